import PlexCore
import PlexTestKit
import Synchronization
import Testing

@testable import PlexCluster

/// A durable counter whose `add` changes the state, then holds the turn for `hold` milliseconds.
struct SlowCounter: VirtualActor {
    static let typeName = "slow-counter"
    static let durability = Durability.durable(checkpointEvery: 1000)
    struct State: ActorState { var total = 0 }
    struct Request: Codable, Sendable {
        var add: Int
        var hold: Int
    }

    let census: HandlerCensus
    init() { census = HandlerCensus() }
    init(census: HandlerCensus) { self.census = census }

    func handle(_ request: Request, state: inout State, context: ActorContext) async throws -> Int {
        state.total += request.add
        guard request.hold > 0, !context.isReplaying else { return state.total }
        census.enter()
        defer { census.leave() }
        try await Task.sleep(for: .milliseconds(request.hold))
        return state.total
    }
}

@Suite("Cancellation", .timeLimit(.minutes(1)))
struct CancellationClusterTests {
    /// Runs `body` with a two-node cluster whose second node owns `key` (of `Busy`, counted by `census`).
    func withOwner(
        transport: TestTransport, census: HandlerCensus,
        _ body: @Sendable (PlexNode, PlexNode, String) async throws -> Void
    ) async throws {
        try await withTestCluster(
            nodes: 2, transport: transport,
            register: {
                $0.register(Busy.self) { Busy(census: census) }
                $0.register(SlowCounter.self)
            }
        ) { cluster in
            let caller = cluster.node(0)
            let owner = cluster.node(1)
            try await body(caller, owner, ownedKey(of: Busy.self, ownedBy: owner.nodeID, on: caller))
        }
    }

    @Test("a remote call cancelled while it waits for its turn never runs", arguments: TestTransport.allCases)
    func cancelledWhileQueued(transport: TestTransport) async throws {
        let census = HandlerCensus()
        try await withOwner(transport: transport, census: census) { caller, owner, key in
            let actor = caller.actor(Busy.self, key: key)
            let first = Task { try await actor.ask(1500, timeout: .seconds(10)) }
            try await eventually("the first call runs") { census.running == 1 }
            let second = Task { try await actor.ask(1, timeout: .seconds(10)) }
            try await eventually("the second call is queued behind it") {
                owner.queuedMessages(for: ActorID(typeName: Busy.typeName, key: key)) == 1
            }
            second.cancel()
            let error = await #expect(throws: CallError.self) { try await second.value }
            #expect(error?.code == .cancelled)
            #expect(census.running == 1)  // answered at once, while the first still runs
            #expect(try await first.value == 1500)
            // In FIFO order a third call runs after the second would have: when it is answered, the second
            // would have started.
            #expect(try await actor.ask(1, timeout: .seconds(10)) == 1)
            #expect(census.started == 2)
            try await eventually("the owner forgot both calls") { owner.dispatcher.inbound.count == 0 }
        }
    }

    @Test("a remote call cancelled while its handler runs cancels the handler", arguments: TestTransport.allCases)
    func cancelledWhileRunning(transport: TestTransport) async throws {
        let census = HandlerCensus()
        try await withOwner(transport: transport, census: census) { caller, owner, key in
            let actor = caller.actor(Busy.self, key: key)
            let call = Task { try await actor.ask(30_000, timeout: .seconds(60)) }
            try await eventually("the handler runs") { census.running == 1 }
            call.cancel()
            let error = await #expect(throws: CallError.self) { try await call.value }
            #expect(error?.code == .cancelled)
            try await eventually("the owner cancelled the handler", within: .seconds(10)) { census.running == 0 }
            // The actor takes its next message at once.
            #expect(try await actor.ask(1, timeout: .seconds(5)) == 1)
        }
    }

    @Test("a call whose deadline passes cancels its handler at the owner", arguments: TestTransport.allCases)
    func deadlineCancels(transport: TestTransport) async throws {
        let census = HandlerCensus()
        try await withOwner(transport: transport, census: census) { caller, _, key in
            let error = await #expect(throws: CallError.self) {
                _ = try await caller.actor(Busy.self, key: key).ask(30_000, timeout: .milliseconds(300))
            }
            #expect(error?.code == .timeout)
            try await eventually("the owner cancelled the handler", within: .seconds(10)) { census.running == 0 }
        }
    }

    @Test("a local call cancelled while it waits for its turn never runs")
    func localQueued() async throws {
        let census = HandlerCensus()
        try await withOwner(transport: .inMemory, census: census) { _, owner, key in
            let actor = owner.actor(Busy.self, key: key)
            let first = Task { try await actor.ask(1000, timeout: .seconds(10)) }
            try await eventually("the first call runs") { census.running == 1 }
            let second = Task { try await actor.ask(1, timeout: .seconds(10)) }
            try await eventually("the second call waits for its turn") {
                owner.queuedMessages(for: ActorID(typeName: Busy.typeName, key: key)) == 1
            }
            second.cancel()
            let error = await #expect(throws: CallError.self) { try await second.value }
            #expect(error?.code == .cancelled)
            #expect(try await first.value == 1000)
            #expect(census.started == 1)
        }
    }

    @Test("a durable handler cancelled part-way is not kept: the actor recovers without it, also after a restart")
    func durableCancelled() async throws {
        let census = HandlerCensus()
        try await withTestCluster(
            nodes: 1, transport: .inMemory, register: { $0.register(SlowCounter.self) { SlowCounter(census: census) } }
        ) { cluster in
            let counter = cluster.node(0).actor(SlowCounter.self, key: "c")
            #expect(try await counter.ask(.init(add: 5, hold: 0)) == 5)
            let cancelled = Task { try await counter.ask(.init(add: 100, hold: 30_000), timeout: .seconds(60)) }
            try await eventually("the slow call changed the state and holds the turn") { census.running == 1 }
            cancelled.cancel()
            let error = await #expect(throws: CallError.self) { try await cancelled.value }
            #expect(error?.code == .cancelled)
            // The 100 it added in memory is gone: the actor recovered from its journal.
            #expect(try await counter.ask(.init(add: 1, hold: 0)) == 6)
            await cluster.crash(0)
            let restarted = try await cluster.restart(0)
            #expect(try await restarted.actor(SlowCounter.self, key: "c").ask(.init(add: 0, hold: 0)) == 6)
        }
    }
}
