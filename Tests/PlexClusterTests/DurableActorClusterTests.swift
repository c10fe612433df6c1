import Foundation
import PlexExamples
import PlexJournal
import PlexSpaces
import PlexTestKit
import Synchronization
import Testing

/// A ledger that checkpoints every 5 operations, to exercise checkpoint + tail replay.
struct ShortLedger: VirtualActor {
    static let typeName = "short-ledger"
    static let durability = Durability.durable(checkpointEvery: 5)
    typealias State = Ledger.State
    typealias Request = Ledger.Request
    let inner = Ledger()
    func handle(_ request: Request, state: inout State, context: ActorContext) async throws -> Ledger.Reply {
        try await inner.handle(request, state: &state, context: context)
    }
}

func key<A: VirtualActor>(_ type: A.Type, ownedBy owner: NodeID, on node: PlexNode) -> String {
    key(ofType: A.typeName, ownedBy: owner, on: node, prefix: "d")
}

@Suite("Durable actors", .timeLimit(.minutes(2)))
struct DurableActorClusterTests {
    @Test("acknowledged operations survive the owner's crash and restart", arguments: TestTransport.allCases)
    func survivesCrash(transport: TestTransport) async throws {
        try await withTestCluster(
            nodes: 3, transport: transport,
            register: {
                $0.registerExamples()
                $0.register(ShortLedger.self)
            }
        ) { cluster in
            let caller = cluster.node(0)
            let owner = cluster.node(2).nodeID
            let ledger = caller.actor(Ledger.self, key: key(Ledger.self, ownedBy: owner, on: caller))
            let short = caller.actor(ShortLedger.self, key: key(ShortLedger.self, ownedBy: owner, on: caller))
            for i in 1...12 {
                _ = try await ledger.ask(.deposit(amount: i))
                _ = try await short.ask(.deposit(amount: i))
            }
            _ = try await ledger.ask(.withdraw(amount: 3))
            let failed = await #expect(throws: CallError.self) { try await ledger.ask(.withdraw(amount: 1_000)) }
            #expect(failed?.remoteCode == "insufficient-funds")
            // ShortLedger checkpointed after 5 and 10 operations: sequence 10 (one entry per operation).
            let checkpoint = try await cluster.node(2).journal.latestCheckpoint(for: short.id)
            #expect(checkpoint?.sequence == 10)

            await cluster.crash(2)
            try await cluster.restart(2)
            try await eventually("the restarted owner answers") {
                (try? await ledger.ask(.balance))?.node == owner.rawValue
            }
            let after = try await ledger.ask(.balance)
            #expect(after.balance == 78 - 3)
            #expect(after.operations == 13)
            let shortAfter = try await short.ask(.balance)
            #expect(shortAfter.balance == 78)  // checkpoint (10 operations) + 2 replayed
            #expect(shortAfter.operations == 12)
            #expect(try await short.ask(.deposit(amount: 1)).balance == 79)
        }
    }

    @Test(
        "a journal entry that does not decode stops the actor's recovery with an error naming it; it is never skipped")
    func undecodableEntry() async throws {
        try await withTestCluster(nodes: 1, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let node = cluster.node(0)
            let ledger = node.actor(Ledger.self, key: "broken")
            try await node.journal.append([
                JournalEntry(actor: ledger.id, sequence: 1, kind: .message, time: 0, payload: [0xFF, 0x00, 0x13])
            ])
            for _ in 0..<2 {
                let error = await #expect(throws: CallError.self) { try await ledger.ask(.deposit(amount: 1)) }
                #expect(error?.code == .storageFailure)
                #expect(error?.message.contains("entry 1") == true)
                #expect(error?.message.contains("journal.sqlite") == true)
            }
            // Other actors are unaffected.
            #expect(try await node.actor(Ledger.self, key: "fine").ask(.deposit(amount: 2)).balance == 2)
        }
    }

    @Test(
        "an idle deactivation leaves a checkpoint only when many messages would replay; the state comes back either way"
    )
    func checkpointAtDeactivation() async throws {
        try await withTestCluster(
            nodes: 1, transport: .inMemory,
            setup: { $0.activation.idleTimeout = .milliseconds(100) },
            register: { $0.registerExamples() }
        ) { cluster in
            let node = cluster.node(0)
            let few = node.actor(Ledger.self, key: "few")
            let many = node.actor(Ledger.self, key: "many")
            for i in 1...3 { _ = try await few.ask(.deposit(amount: i)) }
            for i in 1...12 { _ = try await many.ask(.deposit(amount: i)) }
            try await eventually("both deactivated") { !node.isActive(few.id) && !node.isActive(many.id) }
            #expect(try await node.journal.latestCheckpoint(for: few.id) == nil, "three messages replay cheaply")
            #expect(try await node.journal.latestCheckpoint(for: many.id)?.sequence == 12)
            #expect(try await few.ask(.balance).balance == 6)
            #expect(try await many.ask(.balance).balance == 78)
            // Used a few messages at a time, it checkpoints once the entries past its checkpoint add up to 8,
            // though no activation handled that many.
            for round in 0..<2 {
                try await eventually("deactivated again") { !node.isActive(few.id) }
                #expect(try await node.journal.latestCheckpoint(for: few.id) == nil, "round \(round)")
                for i in 1...3 { _ = try await few.ask(.deposit(amount: i)) }
            }
            try await eventually("deactivated with a checkpoint") {
                try await node.journal.latestCheckpoint(for: few.id)?.sequence == 10
            }
        }
    }

    @Test("ephemeral actors write nothing to the journal")
    func ephemeralWritesNothing() async throws {
        try await withTestCluster(nodes: 1, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let node = cluster.node(0)
            for _ in 0..<10 { _ = try await node.actor(Counter.self, key: "c").ask(.increment) }
            #expect(try await node.journal.statistics().entries == 0)
            _ = try await node.actor(Ledger.self, key: "l").ask(.deposit(amount: 1))
            #expect(try await node.journal.statistics().entries == 1)
        }
    }
}

/// Changes its state, then throws on request: replay must reproduce the change.
struct Fickle: VirtualActor {
    static let typeName = "fickle"
    static let durability = Durability.durable(checkpointEvery: 1000)
    struct State: ActorState { var touched = 0 }
    func handle(_ fail: Bool, state: inout State, context: ActorContext) async throws -> Int {
        state.touched += 1
        if fail { throw ActorFailure(code: "asked-to-fail", message: "failed after touching") }
        return state.touched
    }
}

@Suite("Durable actors: failures", .timeLimit(.minutes(1)))
struct DurableFailureClusterTests {
    @Test("a handler that changes state and then throws recovers to the same state")
    func failedMessagesReplay() async throws {
        try await withTestCluster(nodes: 2, transport: .inMemory, register: { $0.register(Fickle.self) }) { cluster in
            let caller = cluster.node(0)
            let ref = caller.actor(Fickle.self, key: key(Fickle.self, ownedBy: cluster.node(1).nodeID, on: caller))
            #expect(try await ref.ask(false) == 1)
            await #expect(throws: CallError.self) { try await ref.ask(true) }
            #expect(try await ref.ask(false) == 3)
            await cluster.crash(1)
            let restarted = try await cluster.restart(1)
            try await cluster.waitUntil(caller, isConnectedTo: restarted)
            // One call, checked once: a retry would mutate the state and hide a wrong replay.
            #expect(try await ref.ask(false) == 4)
        }
    }
}

@Suite("Idempotency keys", .timeLimit(.minutes(2)))
struct IdempotencyClusterTests {
    @Test("a retried key returns the stored reply without running again", arguments: TestTransport.allCases)
    func retried(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 2, transport: transport, register: { $0.registerExamples() }) { cluster in
            let caller = cluster.node(0)
            let ledger = caller.actor(Ledger.self, key: key(Ledger.self, ownedBy: cluster.node(1).nodeID, on: caller))
            let first = try await ledger.ask(.deposit(amount: 5), idempotencyKey: "k1")
            let again = try await ledger.ask(.deposit(amount: 5), idempotencyKey: "k1")
            #expect(again == first)
            #expect(try await ledger.ask(.deposit(amount: 5), idempotencyKey: "k2").balance == 10)
            #expect(try await ledger.ask(.balance).operations == 2)
            // Ephemeral actors honour keys for the life of their activation.
            let counter = caller.actor(Counter.self, key: "idem")
            #expect(try await counter.ask(.increment, idempotencyKey: "c").count == 1)
            #expect(try await counter.ask(.increment, idempotencyKey: "c").count == 1)
            #expect(try await counter.ask(.increment).count == 2)
        }
    }

    @Test("concurrent duplicates run once and all get the same reply", arguments: TestTransport.allCases)
    func concurrentDuplicates(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 2, transport: transport, register: { $0.registerExamples() }) { cluster in
            let caller = cluster.node(0)
            let ledger = caller.actor(Ledger.self, key: key(Ledger.self, ownedBy: cluster.node(1).nodeID, on: caller))
            let replies = try await withThrowingTaskGroup(of: Ledger.Reply.self) { group in
                for _ in 0..<20 { group.addTask { try await ledger.ask(.deposit(amount: 1), idempotencyKey: "same") } }
                return try await group.reduce(into: [Ledger.Reply]()) { $0.append($1) }
            }
            #expect(Set(replies).count == 1)
            #expect(try await ledger.ask(.balance).balance == 1)
        }
    }

    @Test("keys survive the owner's restart, also those from before the latest checkpoint")
    func acrossRestart() async throws {
        try await withTestCluster(
            nodes: 2, transport: .loopbackTCP,
            register: {
                $0.registerExamples()
                $0.register(ShortLedger.self)
                $0.register(Fickle.self)
            }
        ) { cluster in
            let caller = cluster.node(0)
            let owner = cluster.node(1).nodeID
            let short = caller.actor(ShortLedger.self, key: key(ShortLedger.self, ownedBy: owner, on: caller))
            let early = try await short.ask(.deposit(amount: 100), idempotencyKey: "early")
            for i in 1...6 { _ = try await short.ask(.deposit(amount: 1), idempotencyKey: "later-\(i)") }
            let fickle = caller.actor(Fickle.self, key: key(Fickle.self, ownedBy: owner, on: caller))
            await #expect(throws: CallError.self) { try await fickle.ask(true, idempotencyKey: "boom") }

            await cluster.crash(1)
            let restarted = try await cluster.restart(1)
            try await cluster.waitUntil(caller, isConnectedTo: restarted)
            // "early" precedes the checkpoint (after 5 operations), so only the journal knows it now.
            #expect(try await short.ask(.deposit(amount: 100), idempotencyKey: "early") == early)
            #expect(try await short.ask(.deposit(amount: 1), idempotencyKey: "later-6").balance == 106)
            #expect(try await short.ask(.balance).balance == 106)
            let error = await #expect(throws: CallError.self) { try await fickle.ask(true, idempotencyKey: "boom") }
            #expect(error?.message.contains("earlier call") == true)
            #expect(try await fickle.ask(false) == 2)  // the failed call touched once, and never again
        }
    }
}

/// Counts how often side effects really ran, across restarts of the node that hosts the actor.
final class EffectCounter: Sendable {
    private let count = Mutex(0)
    private let name = Mutex("draw")
    func increment() -> Int {
        count.withLock {
            $0 += 1; return $0
        }
    }
    var value: Int { count.withLock { $0 } }
    var effectName: String {
        get { name.withLock { $0 } }
        set { name.withLock { $0 = newValue } }
    }
}

/// Records a random draw and a time per message through `context`, and the real effect count.
struct Stamper: VirtualActor {
    static let typeName = "stamper"
    static let durability = Durability.durable(checkpointEvery: 1000)
    struct State: ActorState {
        var draws: [Int] = []
        var effects: [Int] = []
        var times: [Double] = []
    }
    struct Reply: Codable, Sendable, Hashable {
        var draws: [Int]
        var effects: [Int]
        var times: [Double]
    }
    let counter: EffectCounter
    init() { counter = EffectCounter() }
    init(counter: EffectCounter) { self.counter = counter }

    func handle(_ stamp: Bool, state: inout State, context: ActorContext) async throws -> Reply {
        if stamp {
            state.draws.append(try await context.random(in: 0...1_000_000))
            state.times.append(try await context.now().timeIntervalSince1970)
            let counter = self.counter
            state.effects.append(try await context.run(counter.effectName) { counter.increment() })
        }
        return Reply(draws: state.draws, effects: state.effects, times: state.times)
    }
}

@Suite("Durable actors: side effects", .timeLimit(.minutes(1)))
struct SideEffectClusterTests {
    @Test("side effects, now and random are recorded: replay reuses them and never runs an effect again")
    func recordedEffects() async throws {
        let counter = EffectCounter()
        try await withTestCluster(
            nodes: 2, transport: .inMemory, register: { $0.register(Stamper.self) { Stamper(counter: counter) } }
        ) { cluster in
            let caller = cluster.node(0)
            let ref = caller.actor(Stamper.self, key: key(Stamper.self, ownedBy: cluster.node(1).nodeID, on: caller))
            for _ in 0..<3 { _ = try await ref.ask(true) }
            let before = try await ref.ask(false)
            #expect(before.effects == [1, 2, 3])
            #expect(counter.value == 3)

            await cluster.crash(1)
            let restarted = try await cluster.restart(1)
            try await cluster.waitUntil(caller, isConnectedTo: restarted)
            let after = try await ref.ask(false)
            #expect(after == before)  // same draws, times and effect results, rebuilt from the journal
            #expect(counter.value == 3)  // the effect did not run again during replay
            #expect(try await ref.ask(true).effects == [1, 2, 3, 4])
        }
    }

    @Test("replay that asks for different effects stops recovery with a non-determinism error")
    func nonDeterminism() async throws {
        let counter = EffectCounter()
        try await withTestCluster(
            nodes: 2, transport: .inMemory, register: { $0.register(Stamper.self) { Stamper(counter: counter) } }
        ) { cluster in
            let caller = cluster.node(0)
            let ref = caller.actor(Stamper.self, key: key(Stamper.self, ownedBy: cluster.node(1).nodeID, on: caller))
            _ = try await ref.ask(true)
            await cluster.crash(1)
            counter.effectName = "renamed"  // the code changed between runs
            let restarted = try await cluster.restart(1)
            try await cluster.waitUntil(caller, isConnectedTo: restarted)
            let error = await #expect(throws: CallError.self) { try await ref.ask(false) }
            #expect(error?.code == .storageFailure)
            #expect(error?.message.contains("non-determinism") == true)
            #expect(error?.message.contains("renamed") == true)
        }
    }
}

@Suite("Time travel")
struct TimeTravelTests {
    @Test("with keep_history, the state at any sequence is rebuilt from the journal, before and after a checkpoint")
    func stateAt() async throws {
        try await withTestCluster(
            nodes: 1, transport: .inMemory, setup: { $0.journal.keepHistory = true },
            register: { $0.register(ShortLedger.self) }
        ) { cluster in
            let node = cluster.node(0)
            let ledger = node.actor(ShortLedger.self, key: "tt")
            for amount in 1...7 { _ = try await ledger.ask(.deposit(amount: amount)) }  // checkpoint after 5
            for (sequence, balance) in [(1, 1), (3, 6), (5, 15), (6, 21), (7, 28)] {
                let (state, reached) = try await StateInspector.state(
                    of: ShortLedger.self, key: "tt", at: UInt64(sequence), in: node.journal)
                #expect(state.balance == balance)
                #expect(reached == UInt64(sequence))
            }
            #expect(
                try await StateInspector.state(of: ShortLedger.self, key: "tt", in: node.journal).state.balance == 28)
            let error = await #expect(throws: CallError.self) {
                _ = try await StateInspector.state(of: Counter.self, key: "x", in: node.journal)
            }
            #expect(error?.code == .invalidRequest)
        }
    }

    @Test("by default a checkpoint prunes the entries it covers, except retained keys; time travel says so")
    func pruning() async throws {
        try await withTestCluster(nodes: 1, transport: .inMemory, register: { $0.register(ShortLedger.self) }) {
            cluster in
            let node = cluster.node(0)
            let ledger = node.actor(ShortLedger.self, key: "pruned")
            for amount in 1...7 {
                _ = try await ledger.ask(.deposit(amount: amount), idempotencyKey: amount == 2 ? "two" : nil)
            }
            // The checkpoint at 5 covers 1...5; only the keyed entry 2 stays before it.
            #expect(try await node.journal.entries(for: ledger.id).map(\.sequence) == [2, 6, 7])
            #expect(try await ledger.ask(.deposit(amount: 2), idempotencyKey: "two").balance == 3)  // still answered
            #expect(
                try await StateInspector.state(of: ShortLedger.self, key: "pruned", in: node.journal).state.balance
                    == 28)
            #expect(
                try await StateInspector.state(of: ShortLedger.self, key: "pruned", at: 6, in: node.journal).state
                    .balance == 21)
            let error = await #expect(throws: CallError.self) {
                _ = try await StateInspector.state(of: ShortLedger.self, key: "pruned", at: 3, in: node.journal)
            }
            #expect(error?.message.contains("pruned") == true)
            // Once its key expires, the keyed entry goes too.
            #expect(try await node.journal.pruneExpiredKeys(before: .max) == 1)
            #expect(try await node.journal.entries(for: ledger.id).map(\.sequence) == [6, 7])
        }
    }
}

@Suite("Durable actors: a full disk", .timeLimit(.minutes(1)))
struct FullDiskClusterTests {
    @Test("with many callers per actor, a journal that fills keeps exactly the acknowledged messages")
    func fullDiskPipelined() async throws {
        try await withTestCluster(
            nodes: 1, transport: .inMemory,
            setup: { $0.journal.maximumBytes = 256 * 1024 },
            register: { $0.registerExamples() }
        ) { cluster in
            let node = cluster.node(0)
            let padding = String(repeating: "x", count: 900)
            // 16 callers on 2 ledgers: each actor has several messages committing at once, so when a commit
            // fails, later messages of the same actor that ran on top of it must fail too.
            // Each caller returns its acknowledged deposits per ledger, its failed calls, and whether one of them
            // failed for the full disk (the others fail as they ran on top of a failed message).
            typealias Outcome = (counts: [Int], failures: Int, diskFull: Bool)
            let results = try await withThrowingTaskGroup(of: Outcome.self) { group in
                for caller in 0..<16 {
                    group.addTask {
                        var counts = [0, 0]
                        var failures = 0
                        var diskFull = false
                        var i = 0
                        while failures < 20 && i < 5_000 {
                            let ledger = (caller + i) % 2
                            do {
                                _ = try await node.actor(Ledger.self, key: "p\(ledger)").ask(
                                    .deposit(amount: 1), idempotencyKey: "\(padding)-\(caller)-\(i)")
                                counts[ledger] += 1
                            } catch let error as CallError {
                                #expect(error.code == .storageFailure, "\(error)")
                                failures += 1
                                diskFull = diskFull || error.message.contains("diskFull")
                            }
                            i += 1
                        }
                        return (counts, failures, diskFull)
                    }
                }
                return try await group.reduce(into: [Outcome]()) { $0.append($1) }
            }
            let acknowledged = results.reduce(into: [0, 0]) {
                $0[0] += $1.counts[0]
                $0[1] += $1.counts[1]
            }
            #expect(acknowledged[0] + acknowledged[1] > 0)
            // The journal filled: every caller stopped on its failures, not on the iteration limit.
            #expect(results.allSatisfy { $0.failures == 20 }, "\(results.map(\.failures))")
            #expect(results.contains { $0.diskFull })
            for ledger in 0..<2 {
                let (state, _) = try await StateInspector.state(of: Ledger.self, key: "p\(ledger)", in: node.journal)
                #expect(state.balance == acknowledged[ledger], "journal of p\(ledger)")
                if let live = try? await node.actor(Ledger.self, key: "p\(ledger)").ask(.balance) {
                    #expect(live.balance == acknowledged[ledger], "live p\(ledger)")
                }
            }
        }
    }

    @Test("when the journal cannot grow, calls fail with storageFailure and nothing acknowledged is lost")
    func fullDisk() async throws {
        try await withTestCluster(
            nodes: 1, transport: .inMemory,
            setup: { $0.journal.maximumBytes = 256 * 1024 },
            register: { $0.registerExamples() }
        ) { cluster in
            let node = cluster.node(0)
            var acknowledged: [Int: Int] = [:]  // ledger → deposits acknowledged
            var failure: CallError?
            var i = 0
            let padding = String(repeating: "x", count: 900)
            while failure == nil && i < 10_000 {
                // Keys make the rows large, so the cap is reached after a few hundred deposits.
                let ledger = node.actor(Ledger.self, key: "l\(i % 8)")
                do {
                    _ = try await ledger.ask(.deposit(amount: 1), idempotencyKey: "\(padding)-\(i)")
                    acknowledged[i % 8, default: 0] += 1
                } catch let error as CallError {
                    failure = error
                }
                i += 1
            }
            let error = try #require(failure)
            #expect(error.code == .storageFailure)
            #expect(error.message.contains("diskFull"))
            // The failed deposit was not kept: the journal holds exactly the acknowledged ones, and the live
            // actor, which forgot its unjournaled change, agrees once it can answer again.
            let failedLedger = (i - 1) % 8
            for (ledger, count) in acknowledged {
                let (state, _) = try await StateInspector.state(of: Ledger.self, key: "l\(ledger)", in: node.journal)
                #expect(state.balance == count)
            }
            if let live = try? await node.actor(Ledger.self, key: "l\(failedLedger)").ask(.balance) {
                #expect(live.balance == acknowledged[failedLedger, default: 0])
            }
        }
    }
}
