import Foundation
import NIOCore
import NIOPosix
import PlexTestKit
import Testing

@testable import PlexTransport

@Suite("Refusal log", .timeLimit(.minutes(1)))
struct RefusalLogTests {
    @Test(
        "one line per reason per interval; the next line counts the ones not logged; reasons do not share an allowance")
    func allowance() {
        let logs = LogCapture()
        let refusals = RefusalLog(logger: logs.logger(label: "t"), interval: .seconds(60))
        let start = ContinuousClock.now
        for i in 0..<5 {
            refusals.log(.warning, .handshakeRefused, "handshake refused", metadata: ["i": "\(i)"], now: start)
        }
        refusals.log(.warning, .handshakeTimedOut, "handshake timed out", metadata: [:], now: start)
        #expect(logs.lines(containing: "handshake refused").count == 1)
        #expect(logs.lines(containing: "handshake timed out").count == 1, "a flood of one reason hides no other")
        #expect(logs.all.allSatisfy { !$0.contains("refused.unlogged") }, "nothing was left out before the first")

        refusals.log(.warning, .handshakeRefused, "handshake refused", metadata: [:], now: start + .seconds(61))
        let lines = logs.lines(containing: "handshake refused")
        #expect(lines.count == 2)
        #expect(lines.last?.contains("refused.unlogged=4") == true, "\(lines)")
    }

    @Test("200 strangers sending garbage before the handshake: every connection is closed, one line is logged")
    func garbageFlood() async throws {
        let node = try await Endpoint.start("b") { $0.refusalLogInterval = .seconds(3600) }
        // A frame longer than the pre-handshake limit: refused at once (not at the handshake deadline).
        let garbage: [UInt8] = [0x00, 0x10, 0x00, 0x00, 1, 1]
        var channels: [any Channel] = []
        for _ in 0..<4 {
            channels += await withTaskGroup(of: (any Channel)?.self) { group in
                for _ in 0..<50 { group.addTask { try? await rawConnection(to: node.address, sending: garbage) } }
                return await group.reduce(into: []) { if let channel = $1 { $0.append(channel) } }
            }
        }
        #expect(channels.count == 200)
        try await eventually("every stranger's connection is closed", within: .seconds(20)) {
            channels.allSatisfy { !$0.isActive }
        }
        let lines = node.logs.lines(containing: "closing connection before its handshake")
        #expect(lines.count == 1, "\(lines.count) lines")
        #expect(lines.first?.contains("127.0.0.1") == true)

        // A refusal for another reason is still logged: a wrong secret.
        var wrong = Endpoint.handshake
        wrong.secret = Array("another-secret-0123456789".utf8)
        let stranger = TCPTransport(
            configuration: .init(handshake: wrong), logger: LogCapture().logger(label: "stranger"))
        await #expect(throws: (any Error).self) {
            _ = try await stranger.connect(to: node.address, delegate: node.delegate)
        }
        try await eventually("the wrong secret is logged") {
            node.logs.lines(containing: "handshake refused").count == 1
        }
        await stranger.shutdown()
        await node.transport.shutdown()
    }
}
