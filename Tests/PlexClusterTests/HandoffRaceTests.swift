import PlexCore
import PlexExamples
import PlexJournal
import PlexSpaces
import PlexTestKit
import PlexWire
import Testing

@testable import PlexCluster

/// Interleavings of pushes, pulls and ring changes that timing alone produces rarely, made certain by holding
/// handoff frames in flight on the in-memory network.
@Suite("Handoff races", .timeLimit(.minutes(2)))
struct HandoffRaceTests {
    /// Node `index`'s address: fixed, so a hold can name a node before it starts.
    static func address(_ index: Int) -> PeerAddress { PeerAddress(host: "127.0.0.1", port: 41_000 + index) }

    /// A ledger key that node-2 owns among three nodes and node-1 among the first two.
    static func account() -> String {
        let nodes = (0..<3).map { NodeID(unchecked: "node-\($0)") }
        for index in 0... {
            let key = "race-\(index)"
            let id = ActorID(typeName: Ledger.typeName, key: key)
            if Placement.owner(of: id, among: nodes) == nodes[2],
                Placement.owner(of: id, among: [nodes[0], nodes[1]]) == nodes[1]
            {
                return key
            }
        }
        fatalError("unreachable")
    }

    /// Fixed addresses, and calls that do not time out while a test holds their frames.
    static let setup: @Sendable (inout NodeConfiguration) -> Void = { configuration in
        let index = Int(configuration.nodeID!.rawValue.dropFirst("node-".count))!
        configuration.listenAddress = Self.address(index)
        configuration.calls.defaultTimeout = .seconds(60)
    }

    /// Seeds a ledger (balance 1) on node-0, the only node, then starts node-1, which owns it, with node-0's push
    /// of it held in flight.
    static func seedAndJoinWithPushHeld(_ cluster: TestCluster) async throws -> (
        first: PlexNode, second: PlexNode, account: String, id: ActorID
    ) {
        let first = cluster.node(0)
        let account = account()
        _ = try await first.actor(Ledger.self, key: account).ask(.deposit(amount: 1), idempotencyKey: "seed")
        cluster.network.hold(.handoff, from: address(0), to: address(1))
        let second = try await cluster.addNode()
        try await cluster.waitForConvergence()
        return (first, second, account, ActorID(typeName: Ledger.typeName, key: account))
    }

    @Test(
        "a push refused after its receiver pulled the actor keeps its tombstone: the calls run there are kept")
    func pullDuringPush() async throws {
        let setup = Self.setup
        try await withTestCluster(nodes: 1, transport: .inMemory, setup: setup, register: { $0.registerExamples() }) {
            cluster in
            let network = cluster.network
            // node-1 joins and owns the ledger; node-0's push of it stays in flight.
            let (first, second, account, id) = try await Self.seedAndJoinWithPushHeld(cluster)
            #expect(first.owner(of: id) == second.nodeID)
            try await eventually("node-0 recorded the handoff and its transfer is in flight") {
                guard network.heldFrames(.handoff, from: Self.address(0), to: Self.address(1)) == 1 else {
                    return false
                }
                return try await first.journal.holding(of: id).movedTo == second.nodeID
            }

            // Called meanwhile, node-1 pulls the ledger from node-0 and runs a deposit on it.
            let deposit = try await second.actor(Ledger.self, key: account).ask(
                .deposit(amount: 10), idempotencyKey: "on-node-1")
            #expect(deposit.balance == 11 && deposit.node == second.nodeID.rawValue)

            // node-2 joins and owns it now; node-1's push of it stays in flight.
            network.hold(.handoff, from: Self.address(1), to: Self.address(2))
            let third = try await cluster.addNode()
            try await cluster.waitForConvergence()
            #expect(cluster.nodes.allSatisfy { $0.owner(of: id) == third.nodeID })

            // node-0's transfer arrives now, and node-1, no longer the owner, refuses it. node-1 had it from the
            // pull: node-0 must not take back its older copy (nor hand that to node-2 next round).
            network.release(.handoff, from: Self.address(0), to: Self.address(1))
            try await eventually("node-0 finished its round for the ring of three") {
                third.handoff.state.withLock { $0.settled[first.nodeID] } == third.handoff.ringHash()
            }
            #expect(try await first.journal.holding(of: id).movedTo == second.nodeID, "node-0 took the ledger back")

            network.release(.handoff, from: Self.address(1), to: Self.address(2))
            for node in cluster.nodes {
                let reply = try await node.actor(Ledger.self, key: account).ask(.balance)
                #expect(reply.balance == 11 && reply.node == third.nodeID.rawValue, "through \(node.nodeID)")
                #expect(try await node.journal.divergedCopies(of: id).isEmpty, "on \(node.nodeID)")
            }
        }
    }

    @Test("a node that stores an actor after its round read what it holds says no done for that round")
    func adoptionBesideARound() async throws {
        try await withTestCluster(
            nodes: 1, transport: .inMemory, setup: Self.setup, register: { $0.registerExamples() }
        ) {
            cluster in
            let network = cluster.network
            // node-1 joins and owns the ledger; node-0's push of it stays in flight.
            let (first, second, account, id) = try await Self.seedAndJoinWithPushHeld(cluster)
            try await eventually("node-0's transfer is in flight; node-1 finished its round for the ring of two") {
                network.heldFrames(.handoff, from: Self.address(0), to: Self.address(1)) == 1
                    && first.handoff.state.withLock { $0.settled[second.nodeID] } == first.handoff.ringHash()
                    && second.handoff.state.withLock { !$0.roundRunning }
            }
            // Called, node-1 pulls the ledger from node-0; the answer stays in flight.
            network.hold(.reply, from: Self.address(0), to: Self.address(1))
            let deposit = Task {
                try await second.actor(Ledger.self, key: account).ask(.deposit(amount: 10), idempotencyKey: "on-1")
            }
            try await eventually("node-1's pull is answered, the answer in flight") {
                network.heldFrames(.reply, from: Self.address(0), to: Self.address(1)) >= 1
            }

            // node-2 joins and owns the ledger now. node-1's round for the new ring runs while its pull is
            // unanswered: it holds nothing yet, and must not tell node-2 it is done.
            let third = try await cluster.addNode()
            try await cluster.waitForConvergence()
            try await eventually("node-1 ran a pass for the ring of three") {
                second.handoff.state.withLock { $0.lastPassRing } == second.handoff.ringHash()
            }
            #expect(third.handoff.state.withLock { $0.settled[second.nodeID] } != third.handoff.ringHash())

            // The pull's answer arrives: node-1 stores the ledger and runs the deposit (acknowledged); then
            // node-0's late push, which node-1 refuses (no longer the owner).
            network.release(.reply, from: Self.address(0), to: Self.address(1))
            network.release(.handoff, from: Self.address(0), to: Self.address(1))
            #expect(try await deposit.value.balance == 11)
            try await eventually("node-0 and node-1 finished their rounds for the ring of three") {
                third.handoff.state.withLock { state in
                    state.settled[first.nodeID] == third.handoff.ringHash()
                        && state.settled[second.nodeID] == third.handoff.ringHash()
                }
            }
            let reply = try await first.actor(Ledger.self, key: account).ask(.balance)
            #expect(reply.balance == 11 && reply.node == third.nodeID.rawValue, "\(reply)")
            for node in cluster.nodes {
                #expect(try await node.journal.divergedCopies(of: id).isEmpty, "on \(node.nodeID)")
            }
        }
    }
}
