import PlexCore
import PlexTestKit
import Synchronization
import Testing

@testable import PlexCluster

/// Counts the handlers that run right now, and how many ever started.
final class HandlerCensus: Sendable {
    private let counts = Mutex<(running: Int, started: Int)>((0, 0))
    var running: Int { counts.withLock { $0.running } }
    var started: Int { counts.withLock { $0.started } }
    func enter() { counts.withLock { $0 = ($0.running + 1, $0.started + 1) } }
    func leave() { counts.withLock { $0.running -= 1 } }
}

/// Holds the turn for the requested milliseconds (cooperatively: cancellation ends the wait), counted by
/// its census.
struct Busy: VirtualActor {
    static let typeName = "busy"
    let census: HandlerCensus
    init() { census = HandlerCensus() }
    init(census: HandlerCensus) { self.census = census }

    func handle(_ request: Int, state: inout NoState, context: ActorContext) async throws -> Int {
        census.enter()
        defer { census.leave() }
        try await Task.sleep(for: .milliseconds(request))
        return request
    }
}

@Suite("Background work is owned", .timeLimit(.minutes(1)))
struct BackgroundWorkClusterTests {
    @Test("tasks that outlive a close are cancelled and awaited; the caller's own task is not waited for")
    func backgroundTasks() async throws {
        let tasks = BackgroundTasks()
        let ended = Mutex(0)
        for _ in 0..<5 {
            tasks.start {
                try? await Task.sleep(for: .seconds(60))
                ended.withLock { $0 += 1 }
            }
        }
        #expect(tasks.count == 5)
        // A task that stops its owner (as `plex node stop` does) is neither cancelled nor waited for by it.
        let stopped = Mutex(false)
        tasks.start {
            await tasks.cancelAndWait()
            stopped.withLock { $0 = true }
        }
        try await eventually("the stopping task returns", within: .seconds(10)) { stopped.withLock { $0 } }
        #expect(ended.withLock { $0 } == 5)
        #expect(!tasks.start {})
        try await eventually("the stopping task ends", within: .seconds(5)) { tasks.count == 0 }
    }

    @Test(
        "a busy node that stops leaves nothing it started running: no turn, no forward, no loop",
        arguments: [false, true])
    func stopBusyNode(crash: Bool) async throws {
        let census = HandlerCensus()
        // A graceful stop runs the queued messages first (so they are short); a crash cancels them.
        let handlerMilliseconds = crash ? 10_000 : 300
        try await withTestCluster(
            nodes: 3, transport: .inMemory, register: { $0.register(Busy.self) { Busy(census: census) } }
        ) { cluster in
            let caller = cluster.node(0)
            let victim = cluster.node(1)
            let other = cluster.node(2)
            // Calls the victim runs (queued behind one another in few actors), tells queued in its mailboxes,
            // and calls it makes to the third node.
            var calls: [Task<Void, Never>] = []
            for i in 0..<4 {
                let key = ownedKey(of: Busy.self, ownedBy: victim.nodeID, on: caller, prefix: "v\(i)-")
                for _ in 0..<5 {
                    calls.append(Task { _ = try? await caller.actor(Busy.self, key: key).ask(handlerMilliseconds) })
                }
                try await victim.actor(Busy.self, key: key).tell(handlerMilliseconds)
            }
            let elsewhere = ownedKey(of: Busy.self, ownedBy: other.nodeID, on: caller, prefix: "o")
            for _ in 0..<3 {
                calls.append(Task { _ = try? await victim.actor(Busy.self, key: elsewhere).ask(100) })
            }
            try await eventually("handlers run on the victim and its work is queued", within: .seconds(10)) {
                census.running >= 4 && victim.runningTasks >= 10
            }
            if crash { await cluster.crash(1) } else { await cluster.stop(1) }
            #expect(victim.runningTasks == 0)
            // The victim's handlers all ended (only the third node's may still run).
            let stillRunning = census.running
            #expect(stillRunning <= 1)
            for call in calls { call.cancel() }
            for call in calls { await call.value }
        }
    }
}
