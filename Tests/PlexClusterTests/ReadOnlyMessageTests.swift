import PlexCore
import PlexTestKit
import Synchronization
import Testing

@testable import PlexCluster

/// A durable tally whose `peek` only reads: it is not journaled, and what its handler changes is dropped.
struct Peekable: VirtualActor {
    static let typeName = "peekable"
    static let durability = Durability.durable(checkpointEvery: 100)
    static let kept = Mutex<ActorRef<Peekable>?>(nil)

    struct State: ActorState { var total = 0 }
    enum Request: Codable, Sendable {
        case add(Int)
        case peek
        case keepReference
        case retire
        /// A read-only message that asks to end the activation once idle.
        case retireQuietly
    }

    static func isReadOnly(_ request: Request) -> Bool {
        switch request {
        case .peek, .retireQuietly: true
        default: false
        }
    }

    func handle(_ request: Request, state: inout State, context: ActorContext) async throws -> Int {
        switch request {
        case .add(let amount): state.total += amount
        case .peek: state.total += 1_000  // dropped: the handler runs on a copy
        case .keepReference: Self.kept.withLock { $0 = context.actor(Peekable.self, key: context.id.key) }
        case .retire, .retireQuietly: context.deactivateOnIdle()
        }
        return state.total
    }
}

@Suite("Read-only messages and references kept from a context", .timeLimit(.minutes(1)))
struct ReadOnlyMessageTests {
    @Test("a read-only message of a durable actor is not journaled and its changes are dropped")
    func readOnly() async throws {
        try await withTestCluster(nodes: 1, transport: .inMemory, register: { $0.register(Peekable.self) }) { cluster in
            let node = cluster.node(0)
            let peekable = node.actor(Peekable.self, key: "t")
            #expect(try await peekable.ask(.add(2)) == 2)
            let entries = try await node.journal.entries(for: peekable.id).count
            #expect(try await peekable.ask(.peek) == 1_002, "the handler's reply is answered")
            #expect(try await peekable.ask(.peek) == 1_002, "its change was dropped")
            #expect(try await node.journal.entries(for: peekable.id).count == entries)
            #expect(try await peekable.ask(.add(1)) == 3)
        }
    }

    @Test("a reference an actor kept from its context fails with nodeUnavailable once its node stopped")
    func keptReferenceAfterStop() async throws {
        try await withTestCluster(nodes: 1, transport: .inMemory, register: { $0.register(Peekable.self) }) { cluster in
            _ = try await cluster.node(0).actor(Peekable.self, key: "k").ask(.keepReference)
            let kept = try #require(Peekable.kept.withLock { $0 })
            #expect(try await kept.ask(.add(1)) == 1)
            await cluster.crash(0)
            do {
                _ = try await kept.ask(.add(1))
                Issue.record("a call through a stopped node's reference must fail")
            } catch let error as CallError {
                #expect(error.code == .nodeUnavailable)
            }
        }
    }

    @Test("an actor that asks to end once idle is deactivated soon (100 ms), before the idle sweep comes by")
    func deactivateOnIdle() async throws {
        try await withTestCluster(nodes: 1, transport: .inMemory, register: { $0.register(Peekable.self) }) { cluster in
            let node = cluster.node(0)
            let peekable = node.actor(Peekable.self, key: "r")
            _ = try await peekable.ask(.add(5))
            _ = try await peekable.ask(.retire)
            #expect(node.configuration.activation.idleTimeout >= .seconds(60))
            // The idle sweep looks once a second: ending within 0.9 s (mostly) takes the retirement.
            try await eventually("deactivated", within: .milliseconds(900)) { !node.isActive(peekable.id) }
            #expect(try await peekable.ask(.add(1)) == 6, "the next message recovers it from the journal")
            // A read-only message can ask it too (and is still not journaled).
            // The last sequence, in the entries or (after the deactivation's checkpoint pruned them) the checkpoint.
            func last() async throws -> UInt64 {
                max(
                    try await node.journal.lastSequence(for: peekable.id),
                    try await node.journal.latestCheckpoint(for: peekable.id)?.sequence ?? 0)
            }
            let sequence = try await last()
            _ = try await peekable.ask(.retireQuietly)
            try await eventually("deactivated by a read-only message", within: .milliseconds(900)) {
                !node.isActive(peekable.id)
            }
            let after = try await last()
            #expect(after == sequence, "\(sequence) -> \(after)")
        }
    }
}
