import PlexCore
import PlexTestKit
import Synchronization
import Testing

@testable import PlexCluster

/// An ephemeral tally that can ask to end once idle, and then keep its turn a while (as a handler that asks
/// early and goes on working would).
struct Retiree: VirtualActor {
    static let typeName = "retiree"
    /// Activations per key, and handlers holding their turn now.
    static let activations = Mutex<[String: Int]>([:])
    static let holding = Atomic<Int>(0)

    struct State: ActorState { var total = 0 }
    enum Request: Codable, Sendable {
        case add(Int)
        case get
        case retire
        case holdAfterRetiring(milliseconds: Int)
    }

    func activate(state: inout State, context: ActorContext) async throws {
        Self.activations.withLock { $0[context.id.key, default: 0] += 1 }
    }

    func handle(_ request: Request, state: inout State, context: ActorContext) async throws -> Int {
        switch request {
        case .add(let amount): state.total += amount
        case .get: break
        case .retire: context.deactivateOnIdle()
        case .holdAfterRetiring(let milliseconds):
            context.deactivateOnIdle()
            Self.holding.add(1, ordering: .relaxed)
            defer { Self.holding.subtract(1, ordering: .relaxed) }
            try? await Task.sleep(for: .milliseconds(milliseconds))
        }
        return state.total
    }
}

@Suite("Retirement of activations that ask to end", .serialized, .timeLimit(.minutes(1)))
struct RetirementTests {
    /// An idle timeout longer than the machine's uptime: the idle sweep (which counts from boot) ends nothing,
    /// so only the retirement does.
    static func noIdleSweep(_ configuration: inout NodeConfiguration) {
        configuration.activation.idleTimeout = .seconds(10_000_000)
    }

    @Test("a message queued before the retirement comes keeps the activation: it came first")
    func messageQueuedBeforeRetirement() async throws {
        try await withTestCluster(
            nodes: 1, transport: .inMemory, setup: Self.noIdleSweep, register: { $0.register(Retiree.self) }
        ) { cluster in
            let node = cluster.node(0)
            let ref = node.actor(Retiree.self, key: "queued")
            #expect(try await ref.ask(.add(1)) == 1)
            let hold = Task { try await ref.ask(.holdAfterRetiring(milliseconds: 300)) }
            try await eventually("the hold runs") { Retiree.holding.load(ordering: .relaxed) == 1 }
            // Queued behind the hold, before the retirement looks (100 ms after the hold asked).
            let add = Task { try await ref.ask(.add(1)) }
            try await eventually("the add is queued") { node.queuedMessages(for: ref.id) == 1 }
            _ = try await hold.value
            #expect(try await add.value == 2)
            #expect(try await ref.ask(.get) == 2, "ended after a message that came first: its state is gone")
            #expect(Retiree.activations.withLock { $0["queued"] } == 1)
            // Asked again with nothing after it, it ends.
            _ = try await ref.ask(.retire)
            try await eventually("retired") { !node.isActive(ref.id) }
        }
    }

    @Test("activations that asked to end and hold their turn do not hold up the others, nor a crash")
    func busyAskersDoNotStall() async throws {
        try await withTestCluster(
            nodes: 1, transport: .inMemory, setup: Self.noIdleSweep, register: { $0.register(Retiree.self) }
        ) { cluster in
            let node = cluster.node(0)
            // More busy askers than a deactivation batch is wide, each holding its turn for 3 s.
            let holds = (0..<(ActivationDirectory.deactivationWidth + 8)).map { index in
                Task {
                    try await node.actor(Retiree.self, key: "busy-\(index)").ask(
                        .holdAfterRetiring(milliseconds: 3_000))
                }
            }
            try await eventually("the holds run") {
                Retiree.holding.load(ordering: .relaxed) == ActivationDirectory.deactivationWidth + 8
            }
            let quick = node.actor(Retiree.self, key: "quick")
            _ = try await quick.ask(.retire)
            let clock = ContinuousClock()
            let asked = clock.now
            try await eventually("the quick one ended", within: .seconds(10)) { !node.isActive(quick.id) }
            // Waiting for the busy ones' turns would take until their holds end (3 s).
            #expect(clock.now - asked < .seconds(2), "ended only after \(clock.now - asked)")
            let crashed = clock.now
            await cluster.crash(0)
            #expect(clock.now - crashed < .seconds(2), "the crash waited \(clock.now - crashed)")
            for hold in holds { _ = try? await hold.value }
        }
    }
}
