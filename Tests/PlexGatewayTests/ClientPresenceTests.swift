import Testing

@testable import PlexGateway

@Suite("HTTP gateway: whether a client is still there")
struct ClientPresenceTests {
    @Test("a wait ends when the client goes, at once when it is gone already, and when its task is cancelled")
    func waits() async throws {
        let presence = ClientPresence()
        let waiting = Task { await presence.untilGone() }
        let cancelled = Task { await presence.untilGone() }
        cancelled.cancel()
        await cancelled.value  // ends although the client is still there
        #expect(!presence.isGone)
        presence.markGone()
        await waiting.value
        await presence.untilGone()  // gone already: returns at once
        #expect(ClientPresence(gone: true).isGone)
    }

    @Test("many waits, some cancelled, all end with the client")
    func many() async {
        let presence = ClientPresence()
        await withTaskGroup(of: Void.self) { group in
            for index in 0..<100 {
                group.addTask {
                    if index.isMultiple(of: 3) { withUnsafeCurrentTask { $0?.cancel() } }
                    await presence.untilGone()
                }
            }
            presence.markGone()
        }
        #expect(presence.isGone)
    }
}
