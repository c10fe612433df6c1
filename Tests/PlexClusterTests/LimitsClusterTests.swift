import PlexCore
import PlexExamples
import PlexSpaces
import PlexTestKit
import Synchronization
import Testing

@testable import PlexCluster

/// A gate the test opens: handlers wait at it, so messages pile up behind them.
final class Gate: Sendable {
    private struct State {
        var open = false
        var waiters: [CheckedContinuation<Void, Never>] = []
        var arrived = 0
    }
    private let state = Mutex(State())

    /// How many handlers reached the gate.
    var arrived: Int { state.withLock { $0.arrived } }

    /// Returns once the gate is open.
    func pass() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let open = state.withLock { state -> Bool in
                state.arrived += 1
                if state.open { return true }
                state.waiters.append(continuation)
                return false
            }
            if open { continuation.resume() }
        }
    }

    func open() {
        let waiters = state.withLock { state in
            state.open = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }
}

/// Records every message it handles, each behind its gate; `-1` only reads the record.
struct Gated: VirtualActor {
    static let typeName = "gated"
    struct State: ActorState { var handled: [Int] = [] }
    let gate: Gate
    init() { self.gate = Gate() }
    init(gate: Gate) { self.gate = gate }

    func handle(_ request: Int, state: inout State, context: ActorContext) async throws -> [Int] {
        guard request >= 0 else { return state.handled }
        await gate.pass()
        state.handled.append(request)
        return state.handled
    }
}

/// Replies with as many bytes as asked for; the request may carry padding of its own.
struct Blob: VirtualActor {
    static let typeName = "blob"
    struct Request: Codable, Sendable {
        var replyBytes: Int
        var padding: [UInt8] = []
    }

    func handle(_ request: Request, state: inout NoState, context: ActorContext) async throws -> [UInt8] {
        [UInt8](repeating: 7, count: request.replyBytes)
    }
}

/// A durable actor whose state is as many bytes as the last request asked for; a negative request reads.
struct Hoard: VirtualActor {
    static let typeName = "hoard"
    static let durability = Durability.durable(checkpointEvery: 100)
    struct State: ActorState { var bytes: [UInt8] = [] }

    func handle(_ request: Int, state: inout State, context: ActorContext) async throws -> Int {
        if request >= 0 { state.bytes = [UInt8](repeating: 9, count: request) }
        return state.bytes.count
    }
}

/// A key of `type` owned by `owner` in `node`'s view.
func ownedKey<A: VirtualActor>(of type: A.Type, ownedBy owner: NodeID, on node: PlexNode, prefix: String = "k")
    -> String
{
    key(ofType: A.typeName, ownedBy: owner, on: node, prefix: prefix)
}

/// The outcome of one call, for bookkeeping across tasks.
enum Outcome: Sendable, Equatable {
    case ok
    case failed(CallError)
}

/// Outcomes of numbered calls, shared by the tasks that make them.
final class Outcomes: Sendable {
    private let storage = Mutex<[Int: Outcome]>([:])
    func record(_ n: Int, _ outcome: Outcome) { storage.withLock { $0[n] = outcome } }
    var all: [Int: Outcome] { storage.withLock { $0 } }
}

@Suite("Limits: mailboxes, the in-flight window and frame sizes", .timeLimit(.minutes(2)))
struct LimitsClusterTests {
    static let mailboxLimit = 8

    @Test(
        "past its mailbox limit an actor refuses calls and tells at once with overloaded; every admitted one runs once",
        arguments: TestTransport.allCases, [false, true])
    func mailboxLimit(transport: TestTransport, remoteCaller: Bool) async throws {
        let gate = Gate()
        try await withTestCluster(
            nodes: 2, transport: transport, setup: { $0.activation.maximumMailboxDepth = Self.mailboxLimit },
            register: { $0.register(Gated.self) { Gated(gate: gate) } }
        ) { cluster in
            let owner = cluster.node(1)
            let caller = remoteCaller ? cluster.node(0) : owner
            let ref = caller.actor(Gated.self, key: ownedKey(of: Gated.self, ownedBy: owner.nodeID, on: caller))
            let first = Task { try await ref.ask(0, timeout: .seconds(60)) }
            try await eventually("the first call holds the actor") { gate.arrived == 1 }

            let extra = 20
            let outcomes = Outcomes()
            let calls = (1...extra).map { n in
                Task {
                    do {
                        _ = try await ref.ask(n, timeout: .seconds(60))
                        outcomes.record(n, .ok)
                    } catch {
                        let failure = error as? CallError ?? CallError(.remoteFailure, "not a CallError: \(error)")
                        outcomes.record(n, .failed(failure))
                    }
                }
            }
            let refusedCount = extra - Self.mailboxLimit
            try await eventually("the calls past the limit fail while the actor is still held") {
                outcomes.all.count == refusedCount
            }
            #expect(owner.queuedMessages(for: ref.id) == Self.mailboxLimit)
            let refused = outcomes.all
            for (_, outcome) in refused {
                guard case .failed(let error) = outcome else {
                    Issue.record("a call finished while the actor was held: \(outcome)")
                    continue
                }
                #expect(error.code == .overloaded)
                #expect(error.message.contains("\(ref.id)"))
                #expect(error.message.contains("\(Self.mailboxLimit)"))
            }

            // A tell meets the same limit: refused locally with an error, remotely by the owner (and dropped).
            if remoteCaller {
                let link = try #require(caller.membership.existingLink(to: owner.nodeID))
                try await ref.tell(100)
                try await eventually("the owner refused the tell") { link.refusedTells == 1 }
            } else {
                let error = await #expect(throws: CallError.self) { try await ref.tell(100) }
                #expect(error?.code == .overloaded)
            }
            #expect(gate.arrived == 1)

            gate.open()
            _ = try await first.value
            for call in calls { await call.value }
            let admitted = outcomes.all.filter { $0.value == .ok }.map(\.key)
            #expect(admitted.count == Self.mailboxLimit)
            let handled = try await ref.ask(-1)
            #expect(handled.count == Set(handled).count, "no message ran twice")
            #expect(Set(handled) == Set([0] + admitted), "every admitted message ran; no refused one did")
            #expect(owner.queuedMessages(for: ref.id) == 0)
            // Drained: the mailbox takes messages again.
            #expect(try await ref.ask(200).last == 200)
        }
    }

    @Test(
        "a tell waits for a slot in the window calls fill, and fails with overloaded when none frees in time",
        arguments: TestTransport.allCases)
    func tellWaitsForTheWindow(transport: TestTransport) async throws {
        let gate = Gate()
        let window = 4
        try await withTestCluster(
            nodes: 2, transport: transport,
            setup: {
                $0.calls.maximumInFlightPerPeer = window
                $0.calls.defaultTimeout = .seconds(1)
                // About the window, not the failure detector: a loaded machine must not make the owner unreachable.
                $0.membership.unreachableAfter = .seconds(60)
            },
            register: { $0.register(Gated.self) { Gated(gate: gate) } }
        ) { cluster in
            let caller = cluster.node(0)
            let owner = cluster.node(1)
            let link = try #require(caller.membership.existingLink(to: owner.nodeID))
            // Each call is to its own actor, held at the gate: the window is full.
            let refs = (0..<window + 1).map { i in
                caller.actor(
                    Gated.self, key: ownedKey(of: Gated.self, ownedBy: owner.nodeID, on: caller, prefix: "w\(i)-"))
            }
            let held = refs.prefix(window).map { ref in Task { try await ref.ask(1, timeout: .seconds(60)) } }
            try await eventually("\(window) calls hold the window") { gate.arrived == window }
            #expect(link.inFlight == window)
            let error = await #expect(throws: CallError.self) { try await refs[window].tell(2) }
            #expect(error?.code == .overloaded)
            #expect(link.inFlight == window)

            // A tell that finds a slot freed while it waits goes through.
            let waiting = Task { try await refs[window].tell(3) }
            gate.open()
            try await waiting.value
            for call in held { _ = try await call.value }
            try await eventually("the tell ran and its acknowledgement freed its slot") {
                guard link.inFlight == 0 else { return false }
                return try await refs[window].ask(-1) == [3]
            }
        }
    }

    @Test("tells hold their window slots until the owner acknowledges them; past the window they fail")
    func tellsHoldTheWindow() async throws {
        let window = 4
        let openGate = Gate()
        openGate.open()
        try await withTestCluster(
            nodes: 2, transport: .inMemory,
            setup: {
                $0.calls.maximumInFlightPerPeer = window
                $0.calls.defaultTimeout = .seconds(1)
                // The partition below must not make the owner unreachable: tells should meet the window.
                $0.membership.unreachableAfter = .seconds(60)
            },
            register: { $0.register(Gated.self) { Gated(gate: openGate) } }
        ) { cluster in
            let caller = cluster.node(0)
            let owner = cluster.node(1)
            let link = try #require(caller.membership.existingLink(to: owner.nodeID))
            let ref = caller.actor(Gated.self, key: ownedKey(of: Gated.self, ownedBy: owner.nodeID, on: caller))
            // The owner does not answer: nothing reaches it.
            cluster.network.partition(caller.address, owner.address)
            for n in 0..<window { try await ref.tell(n) }
            #expect(link.inFlight == window)
            let tell = await #expect(throws: CallError.self) { try await ref.tell(window) }
            #expect(tell?.code == .overloaded)
            let ask = await #expect(throws: CallError.self) { try await ref.ask(-1, timeout: .milliseconds(100)) }
            #expect(ask?.code == .overloaded)
            #expect(link.inFlight <= window, "nothing past the window is held")

            // The lost tells' slots are freed after their guard (twice the call timeout); delivery was at most once.
            cluster.network.heal(caller.address, owner.address)
            try await eventually("the slots of the lost tells are freed") { link.inFlight == 0 }
            try await ref.tell(7)
            try await eventually("the tell after the partition ran, and only it") {
                (try await ref.ask(-1, timeout: .seconds(5))) == [7]
            }
            #expect(link.inFlight == 0)
        }
    }

    @Test(
        "a reply or request over max_frame_size fails that call alone; the connection stays and the next call works",
        arguments: TestTransport.allCases)
    func oversizedFrames(transport: TestTransport) async throws {
        let maximum = 4096
        try await withTestCluster(
            nodes: 2, transport: transport, setup: { $0.maximumFrameSize = maximum },
            register: { $0.register(Blob.self) }
        ) { cluster in
            let caller = cluster.node(0)
            let owner = cluster.node(1)
            let link = try #require(caller.membership.existingLink(to: owner.nodeID))
            let connection = try #require(link.connection)
            let ref = caller.actor(Blob.self, key: ownedKey(of: Blob.self, ownedBy: owner.nodeID, on: caller))
            #expect(try await ref.ask(Blob.Request(replyBytes: 100)).count == 100)

            let reply = await #expect(throws: CallError.self) {
                try await ref.ask(Blob.Request(replyBytes: 2 * maximum))
            }
            #expect(reply?.code == .codecFailure)
            #expect(reply?.message.contains("max_frame_size") == true)
            #expect(reply?.message.contains("\(ref.id)") == true)
            #expect(try await ref.ask(Blob.Request(replyBytes: 200)).count == 200)

            let padding = [UInt8](repeating: 1, count: 2 * maximum)
            let request = await #expect(throws: CallError.self) {
                try await ref.ask(Blob.Request(replyBytes: 1, padding: padding))
            }
            #expect(request?.code == .invalidRequest)
            #expect(request?.message.contains("max_frame_size") == true)
            let tell = await #expect(throws: CallError.self) {
                try await ref.tell(Blob.Request(replyBytes: 1, padding: padding))
            }
            #expect(tell?.code == .invalidRequest)
            #expect(try await ref.ask(Blob.Request(replyBytes: 300)).count == 300)

            #expect(link.connection === connection, "the connection was never replaced")
            #expect(caller.connectedMembers.contains(owner.nodeID))
        }
    }

    @Test(
        "a handoff over max_frame_size fails alone: logged as an error, the link stays, the actor is not started anew",
        arguments: TestTransport.allCases)
    func oversizedHandoff(transport: TestTransport) async throws {
        let maximum = 4096
        try await withTestCluster(
            nodes: 1, transport: transport, setup: { $0.maximumFrameSize = maximum },
            register: { node in
                node.register(Hoard.self)
                node.register(Ledger.self)
            }
        ) { cluster in
            let first = cluster.node(0)
            // Actors the next node (node-1) will own once it joins.
            let ring = [first.nodeID, try NodeID("node-1")]
            func moving(_ typeName: String) -> String {
                var i = 0
                while Placement.owner(of: ActorID(typeName: typeName, key: "m\(i)"), among: ring) == first.nodeID {
                    i += 1
                }
                return "m\(i)"
            }
            let big = moving(Hoard.typeName)
            let small = moving(Ledger.typeName)
            #expect(try await first.actor(Hoard.self, key: big).ask(2 * maximum) == 2 * maximum)
            _ = try await first.actor(Ledger.self, key: small).ask(.deposit(amount: 5))

            let joined = try await cluster.addNode()
            try await cluster.waitForConvergence()
            let link = try #require(first.membership.existingLink(to: joined.nodeID))
            let connection = try #require(link.connection)
            // A push round that ran before the link was up skipped the actor; this one, now that it is up, tries.
            first.handoff.scheduleRound()
            try await eventually("the big actor's handoff failed, logged as an error") {
                cluster.logs.all.contains {
                    $0.hasPrefix("error") && $0.contains("handoff failed") && $0.contains("hoard/\(big)")
                        && $0.contains("max_frame_size")
                }
            }
            // The small actor moved over the same link; the big one fails with the typed error instead of
            // starting from nothing at its new owner (which would answer 0).
            #expect(try await joined.actor(Ledger.self, key: small).ask(.balance).balance == 5)
            let error = await #expect(throws: CallError.self) { try await joined.actor(Hoard.self, key: big).ask(-1) }
            #expect(error?.code == .codecFailure)
            #expect(link.connection === connection, "the connection was never replaced")
            #expect(first.connectedMembers.contains(joined.nodeID))
            #expect(joined.connectedMembers.contains(first.nodeID))
        }
    }

    @Test("a mailbox limit of zero or less is refused at start, naming the key")
    func invalidMailboxLimit() async throws {
        for limit in [0, -1] {
            var configuration = TestCluster.configuration(directory: "/tmp/unused-\(limit)", seeds: [])
            configuration.activation.maximumMailboxDepth = limit
            let error = #expect(throws: NodeError.self) { try configuration.validate() }
            #expect(error?.code == .invalidConfiguration)
            #expect(error?.message.contains("mailbox_limit") == true)
        }
        #expect(ActivationConfiguration().maximumMailboxDepth == 10_000)
    }
}
