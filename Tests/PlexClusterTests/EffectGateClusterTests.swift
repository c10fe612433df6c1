import Foundation
import PlexSpaces
import PlexTestKit
import Synchronization
import Testing

@testable import PlexJournal

/// What the gate tests observe: whether the journal's writer was let go yet, and what the effects saw.
final class GateProbe: Sendable {
    struct Observed: Sendable {
        /// Messages whose handler started (with an effect to run).
        var entered = 0
        /// Bodies of `context.run` that ran, and messages the target actor received.
        var ran = 0
        /// For each effect point passed: whether the writer had been released by then.
        var sawReleased: [Bool] = []
    }
    let released = Atomic(false)
    private let observed = Mutex(Observed())
    var value: Observed { observed.withLock { $0 } }
    func update(_ body: (inout Observed) -> Void) { observed.withLock { body(&$0) } }
    func passed() {
        let released = released.load(ordering: .sequentiallyConsistent)
        update { $0.sawReleased.append(released) }
    }
}

/// An ephemeral actor that other actors' handlers call or tell.
struct GateTarget: VirtualActor {
    static let typeName = "gate-target"
    let probe: GateProbe
    init() { probe = GateProbe() }
    init(probe: GateProbe) { self.probe = probe }

    func handle(_ request: Int, state: inout NoState, context: ActorContext) async throws -> Int {
        probe.update { $0.ran += 1 }
        return request
    }
}

/// A durable actor whose messages either only change its state or reach outside it in one of the ways the
/// output gate holds.
struct EffectGated: VirtualActor {
    static let typeName = "gated"
    static let durability = Durability.durable(checkpointEvery: 1000)
    enum Effect: String, Codable, Sendable, CaseIterable, CustomStringConvertible {
        case run, schedule, ask, tell
        var description: String { rawValue }
    }
    enum Request: Codable, Sendable {
        case step
        case effect(Effect)
    }
    typealias State = Int
    let probe: GateProbe
    init() { probe = GateProbe() }
    init(probe: GateProbe) { self.probe = probe }
    static func initialState(for id: ActorID) -> Int { 0 }

    func handle(_ request: Request, state: inout Int, context: ActorContext) async throws -> Int {
        state += 1
        guard case .effect(let effect) = request, !context.isReplaying else { return state }
        let probe = self.probe
        probe.update { $0.entered += 1 }
        switch effect {
        case .run:
            _ = try await context.run("probe") {
                probe.passed()
                probe.update { $0.ran += 1 }
                return 1
            }
        case .schedule:
            try await context.schedule(Request.step, after: .seconds(3600), name: "later")
            probe.update { $0.ran += 1 }
        case .ask:
            _ = try await context.actor(GateTarget.self, key: "t").ask(1)
        case .tell:
            try await context.actor(GateTarget.self, key: "t").tell(1)
        }
        probe.passed()
        return state
    }
}

/// The writer thread of `actor`'s journal shard, held inside a job so that appends queue until ``release()``
/// (as the journal tests' `HeldWriter` does).
struct HeldShard {
    let gate: DispatchSemaphore
    let holder: Task<Void, any Error>
    let writer: JournalWriter

    static func hold(_ journal: Journal, for actor: ActorID) async throws -> HeldShard {
        let gate = DispatchSemaphore(value: 0)
        let inside = DispatchSemaphore(value: 0)
        let writer = journal.writer(for: actor)
        // Held at most 60 s, so that a failed test cannot hang the run.
        let holder = Task {
            try await writer.perform(filing: .none) { _ throws(JournalError) in
                inside.signal()
                _ = gate.wait(timeout: .now() + .seconds(60))
            }
        }
        // This job itself, not another one the writer happened to be running.
        try await eventually("the writer is held") { inside.wait(timeout: .now()) == .success }
        return HeldShard(gate: gate, holder: holder, writer: writer)
    }

    func release() async throws {
        gate.signal()
        try await holder.value
    }
}

@Suite("Durable actors: effects wait for durability", .timeLimit(.minutes(1)))
struct EffectGateClusterTests {
    func register(_ probe: GateProbe) -> @Sendable (PlexNode) -> Void {
        { node in
            node.register(EffectGated.self) { EffectGated(probe: probe) }
            node.register(GateTarget.self) { GateTarget(probe: probe) }
        }
    }

    @Test(
        "an effect of the next message does not start until the earlier message's entry is durable",
        arguments: EffectGated.Effect.allCases)
    func effectWaits(effect: EffectGated.Effect) async throws {
        let probe = GateProbe()
        try await withTestCluster(nodes: 1, transport: .inMemory, register: register(probe)) { cluster in
            let node = cluster.node(0)
            let ref = node.actor(EffectGated.self, key: "g")
            #expect(try await ref.ask(.step) == 1)  // activated; nothing pending
            let held = try await HeldShard.hold(node.journal, for: ref.id)
            defer { held.gate.signal() }  // a failed expectation must not leave the writer held
            let first = Task { try await ref.ask(.step) }
            // The first message ran and its entry waits in the queue; its reply waits for the entry.
            try await eventually("the first entry is queued") { held.writer.queuedAppends == 1 }
            let second = Task { try await ref.ask(.effect(effect)) }
            try await eventually("the second message's handler started") { probe.value.entered == 1 }
            #expect(probe.value.ran == 0, "the effect started before the earlier entry was durable")
            probe.released.store(true, ordering: .sequentiallyConsistent)
            try await held.release()
            #expect(try await first.value == 2)
            #expect(try await second.value == 3)
            try await eventually("the effect ran") { probe.value.ran == 1 }
            #expect(!probe.value.sawReleased.contains(false), "an effect passed before the entry was durable")
            #expect(try await node.journal.lastSequence(for: ref.id) == 3)
        }
    }

    @Test(
        "when the earlier message's entry fails to commit, the next message's effect never runs",
        arguments: EffectGated.Effect.allCases)
    func failedCommitStopsEffect(effect: EffectGated.Effect) async throws {
        let probe = GateProbe()
        try await withTestCluster(nodes: 1, transport: .inMemory, register: register(probe)) { cluster in
            let node = cluster.node(0)
            let ref = node.actor(EffectGated.self, key: "g")
            #expect(try await ref.ask(.step) == 1)
            // Another writer takes sequence 2 behind the activation's back, so its next entry cannot commit.
            let codec = BinaryMessageCodec()
            try await node.journal.append([
                JournalEntry(
                    actor: ref.id, sequence: 2, kind: .message, time: 0,
                    payload: try codec.encode(EffectGated.Request.step),
                    reply: try codec.encode(2))
            ])
            let held = try await HeldShard.hold(node.journal, for: ref.id)
            defer { held.gate.signal() }  // a failed expectation must not leave the writer held
            let first = Task { try await ref.ask(.step) }
            try await eventually("the first entry is queued") { held.writer.queuedAppends == 1 }
            let second = Task { try await ref.ask(.effect(effect)) }
            try await eventually("the second message's handler started") { probe.value.entered == 1 }
            probe.released.store(true, ordering: .sequentiallyConsistent)
            try await held.release()
            let firstError = await #expect(throws: CallError.self) { try await first.value }
            #expect(firstError?.code == .storageFailure)
            let secondError = await #expect(throws: CallError.self) { try await second.value }
            #expect(secondError?.code == .storageFailure)
            // The actor recovers from the journal (entries 1 and 2) and takes new messages.
            #expect(try await ref.ask(.step) == 3)
            #expect(probe.value.ran == 0, "the effect ran although the message before it was not kept")
            #expect(probe.value.sawReleased.isEmpty)
            #expect(try await node.journal.lastSequence(for: ref.id) == 3)
        }
    }
}
