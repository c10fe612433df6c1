import FoundationEssentials
import PlexCore
import PlexExamples
import PlexJournal
import PlexSpaces
import PlexTestKit
import Synchronization
import Testing

@testable import PlexCluster

/// A ledger declared with failover placement: durable types must refuse it.
struct FailoverLedger: VirtualActor {
    static let typeName = "failover-ledger"
    static let durability = Durability.durable(checkpointEvery: 10)
    static let placement = PlacementStrategy.failover
    struct State: ActorState { var balance = 0 }
    func handle(_ request: Int, state: inout State, context: ActorContext) async throws -> Int {
        state.balance += request
        return state.balance
    }
}

/// The cluster, not only the node, keeps every acknowledged effect: cold and staggered restarts, nodes that
/// start while their seeds are down, foreign clusters, agreed removal, and leaves whose drain timed out.
@Suite("Cluster-wide safety", .timeLimit(.minutes(3)))
struct ClusterSafetyClusterTests {
    /// A ledger key owned by `owner` among `members` (by node id).
    func ledger(ownedBy owner: NodeID, among members: [NodeID], prefix: String = "acct") -> String {
        (0..<10_000).map { "\(prefix)-\($0)" }.first {
            Placement.owner(of: ActorID(typeName: Ledger.typeName, key: $0), among: members) == owner
        }!
    }

    func expectUnavailable(_ node: PlexNode, _ key: String, _ comment: Comment? = nil) async {
        let error = await #expect(throws: CallError.self, comment) {
            try await node.actor(Ledger.self, key: key).ask(.deposit(amount: 1), timeout: .seconds(2))
        }
        #expect(error?.code == .nodeUnavailable, comment)
    }

    @Test(
        "the whole cluster crashes and comes back one node at a time: an actor whose owner is not back fails fast, never starts from nothing elsewhere, and keeps its balance",
        arguments: TestTransport.allCases)
    func coldRestart(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 3, transport: transport, register: { $0.register(Ledger.self) }) { cluster in
            let ids = cluster.nodes.map(\.nodeID)
            let key = ledger(ownedBy: ids[1], among: ids)
            for deposit in 1...2 {
                _ = try await cluster.node(0).actor(Ledger.self, key: key).ask(
                    .deposit(amount: 100), idempotencyKey: "d-\(deposit)")
            }
            for index in [0, 1, 2] { await cluster.crash(index) }
            // Only node 2 comes back (the others stay down): it knows the ring, so it neither founds a
            // cluster of its own nor runs node 1's ledger.
            let lone = try await cluster.restart(2)
            #expect(lone.isJoined)
            #expect(lone.members.count == 3)
            await expectUnavailable(lone, key, "the owner is down")
            #expect(!lone.isActive(ActorID(typeName: Ledger.typeName, key: key)))
            // Then node 0 (a seed for the others, started last but one) and node 1.
            let first = try await cluster.restart(0)
            await expectUnavailable(first, key, "the owner is still down")
            try await cluster.restart(1)
            try await cluster.waitForConvergence()
            for node in cluster.nodes {
                let reply = try await node.actor(Ledger.self, key: key).ask(.balance)
                #expect(reply.balance == 200)
                #expect(reply.node == ids[1].rawValue)
            }
            #expect(Set(cluster.nodes.compactMap(\.clusterID)).count == 1)
        }
    }

    @Test("ten nodes started at once, in any order, all listing the same two seeds, form one cluster")
    func tenAtOnce() async throws {
        let network = InMemoryNetwork()
        let logs = LogCapture()
        let directory = FileManager.default.temporaryDirectory.path + "/plex-ten-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let addresses = (0..<10).map { PeerAddress(host: "127.0.0.1", port: 21_000 + $0) }
        let seeds = [addresses[0], addresses[1]]
        let order = Array(0..<10).shuffled()
        var all: [PlexNode] = []
        do {
            all = try await withThrowingTaskGroup(of: PlexNode.self) { group in
                for (position, index) in order.enumerated() {
                    group.addTask {
                        try await Task.sleep(for: .milliseconds(position * 30))
                        var configuration = TestCluster.configuration(
                            directory: "\(directory)/node-\(index)", seeds: seeds)
                        configuration.nodeID = try NodeID("node-\(index)")
                        configuration.listenAddress = addresses[index]
                        configuration.membership.joinTimeout = .milliseconds(500)
                        return try await PlexNode.start(
                            configuration, transport: .inMemory(network), logger: logs.logger(label: "node-\(index)"))
                    }
                }
                var started: [PlexNode] = []
                for try await node in group { started.append(node) }
                return started
            }
            try await eventually("ten nodes in one cluster, each seeing all ten up", within: .seconds(20)) {
                Set(all.compactMap(\.clusterID)).count == 1 && all.allSatisfy(\.isJoined)
                    && all.allSatisfy { $0.members.filter { $0.status == .up && $0.reachable }.count == 10 }
            }
            #expect(logs.lines(containing: "founded a new cluster").count == 1)
        } catch {
            logs.dump()
            throw error
        }
        for node in all { await node.shutdown() }
    }

    @Test("a new node whose seeds are down waits without founding a cluster, answers no call, then joins")
    func seedsDown() async throws {
        let network = InMemoryNetwork()
        let logs = LogCapture()
        let directory = FileManager.default.temporaryDirectory.path + "/plex-wait-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let seedAddress = PeerAddress(host: "127.0.0.1", port: 22_001)
        var configuration = TestCluster.configuration(directory: "\(directory)/waiter", seeds: [seedAddress])
        configuration.nodeID = try NodeID("waiter")
        configuration.membership.joinTimeout = .milliseconds(300)
        let waiter = try await PlexNode.start(
            configuration, transport: .inMemory(network), logger: logs.logger(label: "waiter"),
            setup: { $0.register(Ledger.self) })
        defer { Task { await waiter.shutdown() } }
        #expect(!waiter.isJoined)
        #expect(waiter.clusterID == nil)
        #expect(waiter.admin.status().membership.hasPrefix("joining"))
        await expectUnavailable(waiter, "acct-1", "a node that has not joined answers no call")
        #expect(!waiter.isActive(ActorID(typeName: Ledger.typeName, key: "acct-1")))
        #expect(!logs.lines(containing: "waiting to join").isEmpty)
        // The seed starts (founding: it is its own first seed); the waiter joins it.
        var seedConfiguration = TestCluster.configuration(directory: "\(directory)/seed", seeds: [seedAddress])
        seedConfiguration.nodeID = try NodeID("seed")
        seedConfiguration.listenAddress = seedAddress
        let seed = try await PlexNode.start(
            seedConfiguration, transport: .inMemory(network), logger: logs.logger(label: "seed"),
            setup: { $0.register(Ledger.self) })
        defer { Task { await seed.shutdown() } }
        try await eventually("the waiter joined the seed's cluster", within: .seconds(10)) {
            waiter.isJoined && waiter.clusterID == seed.clusterID
                && waiter.members.filter { $0.status == .up && $0.reachable }.count == 2
        }
        _ = try await waiter.actor(Ledger.self, key: "acct-1").ask(.deposit(amount: 5))
        #expect(try await seed.actor(Ledger.self, key: "acct-1").ask(.balance).balance == 5)
    }

    @Test("members of two clusters founded apart refuse each other, loudly, and never merge")
    func foreignCluster() async throws {
        let network = InMemoryNetwork()
        let logs = LogCapture()
        let directory = FileManager.default.temporaryDirectory.path + "/plex-two-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var a = TestCluster.configuration(directory: "\(directory)/a", seeds: [])
        a.nodeID = try NodeID("a")
        a.bootstrap = true
        let nodeA = try await PlexNode.start(a, transport: .inMemory(network), logger: logs.logger(label: "a"))
        defer { Task { await nodeA.shutdown() } }
        var b = TestCluster.configuration(directory: "\(directory)/b", seeds: [nodeA.address])
        b.nodeID = try NodeID("b")
        b.bootstrap = true  // founds its own cluster at once, then meets a through its seed
        let nodeB = try await PlexNode.start(b, transport: .inMemory(network), logger: logs.logger(label: "b"))
        defer { Task { await nodeB.shutdown() } }
        #expect(nodeA.clusterID != nodeB.clusterID)
        try await eventually("both refused the other", within: .seconds(10)) {
            nodeA.membership.foreignClusters.load(ordering: .relaxed) > 0
                || nodeB.membership.foreignClusters.load(ordering: .relaxed) > 0
        }
        #expect(!logs.lines(containing: "refusing a member of another cluster").isEmpty)
        #expect(nodeA.members.map(\.nodeID) == [nodeA.nodeID])
        #expect(nodeB.members.map(\.nodeID) == [nodeB.nodeID])
    }

    @Test("a durable type with failover placement is refused when the node starts, with a clear error")
    func failoverDurableRefused() async throws {
        let directory = FileManager.default.temporaryDirectory.path + "/plex-fo-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = TestCluster.configuration(directory: directory, seeds: [])
        let error = await #expect(throws: NodeError.self) {
            _ = try await PlexNode.start(
                configuration, transport: .inMemory(InMemoryNetwork()), setup: { $0.register(FailoverLedger.self) })
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("failover-ledger") == true)
        #expect(error?.message.contains("failover placement") == true)
    }

    @Test(
        "removal needs every reachable member's agreement; a removed node that is alive stops when it hears of it")
    func agreedRemoval() async throws {
        try await withTestCluster(nodes: 3, transport: .inMemory, register: { $0.register(Ledger.self) }) { cluster in
            let (a, b, c) = (cluster.node(0), cluster.node(1), cluster.node(2))
            // Only a and c lose each other: b still sees c, so a may not remove it.
            cluster.network.partition(a.address, c.address)
            try await eventually("a sees c unreachable", within: .seconds(10)) {
                a.members.first { $0.nodeID == c.nodeID }?.reachable == false
            }
            let refused = await a.admin.remove(c.nodeID)
            #expect(refused.hasPrefix("refused"), "\(refused)")
            #expect(refused.contains(b.nodeID.rawValue), "names who disagrees: \(refused)")
            #expect(a.members.first { $0.nodeID == c.nodeID }?.status == .up)
            // Now c is cut off from everyone: both agree, and the removal goes through.
            cluster.network.partition(b.address, c.address)
            try await eventually("b sees c unreachable", within: .seconds(10)) {
                b.members.first { $0.nodeID == c.nodeID }?.reachable == false
            }
            let removed = await a.admin.remove(c.nodeID)
            #expect(removed.hasPrefix("removed"), "\(removed)")
            try await eventually("b learned of the removal", within: .seconds(10)) {
                b.members.first { $0.nodeID == c.nodeID }?.status == .removed
            }
            #expect(c.stoppedBecause == nil)
            // The partition heals: c hears it was removed and stops serving, instead of running on alone.
            cluster.network.healAll()
            try await eventually("c stopped because it was removed", within: .seconds(10)) {
                c.stoppedBecause?.code == .removed
            }
            await #expect(throws: CallError.self) { try await c.actor(Ledger.self, key: "x").ask(.balance) }
        }
    }

    @Test("in an even split neither side can remove the other: a majority counts the node to be removed")
    func evenSplit() async throws {
        try await withTestCluster(nodes: 4, transport: .inMemory, register: { $0.register(Ledger.self) }) { cluster in
            let (a, b, c, d) = (cluster.node(0), cluster.node(1), cluster.node(2), cluster.node(3))
            for left in [a, b] { for right in [c, d] { cluster.network.partition(left.address, right.address) } }
            try await eventually("each side sees the other unreachable", within: .seconds(10)) {
                [a, b].allSatisfy { side in
                    side.members.filter { [c.nodeID, d.nodeID].contains($0.nodeID) }.allSatisfy { !$0.reachable }
                }
                    && [c, d].allSatisfy { side in
                        side.members.filter { [a.nodeID, b.nodeID].contains($0.nodeID) }.allSatisfy { !$0.reachable }
                    }
            }
            let fromA = await a.admin.remove(c.nodeID)
            let fromC = await c.admin.remove(a.nodeID)
            #expect(fromA.hasPrefix("refused") && fromA.contains("not a majority"), "\(fromA)")
            #expect(fromC.hasPrefix("refused") && fromC.contains("not a majority"), "\(fromC)")
            #expect(a.members.first { $0.nodeID == c.nodeID }?.status == .up)
            #expect(c.members.first { $0.nodeID == a.nodeID }?.status == .up)
            cluster.network.healAll()
            try await cluster.waitForConvergence()
        }
    }

    @Test(
        "a removed node started again on its data directory is refused and stops; what the survivors acknowledged meanwhile stays"
    )
    func removedStaysRemoved() async throws {
        try await withTestCluster(nodes: 3, transport: .inMemory, register: { $0.register(Ledger.self) }) { cluster in
            let (a, b, c) = (cluster.node(0), cluster.node(1), cluster.node(2))
            let key = ledger(ownedBy: c.nodeID, among: [a.nodeID, b.nodeID, c.nodeID])
            #expect(try await a.actor(Ledger.self, key: key).ask(.deposit(amount: 100)).balance == 100)
            await cluster.crash(2)
            try await eventually("both survivors see the crash", within: .seconds(10)) {
                [a, b].allSatisfy { $0.members.first { $0.nodeID == c.nodeID }?.reachable == false }
            }
            let removed = await a.admin.remove(c.nodeID)
            #expect(removed.hasPrefix("removed"), "\(removed)")
            // As removal says: the ledger starts again on a survivor; what is acknowledged there must stay.
            #expect(try await a.actor(Ledger.self, key: key).ask(.deposit(amount: 5)).balance == 5)
            try await eventually("b learned of the removal", within: .seconds(10)) {
                b.members.first { $0.nodeID == c.nodeID }?.status == .removed
            }
            let back = try await cluster.restart(2)
            try await eventually("the restarted node hears it was removed and stops", within: .seconds(10)) {
                back.stoppedBecause?.code == .removed
            }
            #expect(back.stoppedBecause?.message.contains("new node id") == true)
            #expect(a.members.first { $0.nodeID == c.nodeID }?.status == .removed)
            #expect(b.members.first { $0.nodeID == c.nodeID }?.status == .removed)
            // The old copy (100) never serves again; the survivors' history is the live one, through either.
            #expect(try await a.actor(Ledger.self, key: key).ask(.deposit(amount: 1)).balance == 6)
            #expect(try await b.actor(Ledger.self, key: key).ask(.balance).balance == 6)
            await #expect(throws: CallError.self) { try await back.actor(Ledger.self, key: key).ask(.balance) }
        }
    }

    @Test(
        "a leave whose drain times out leaves its actors owned by no one: calls fail with nodeUnavailable until it rejoins, and nothing starts from nothing"
    )
    func drainTimeout() async throws {
        try await withTestCluster(
            nodes: 3, transport: .inMemory, setup: { $0.membership.drainTimeout = .milliseconds(300) },
            register: { $0.register(Ledger.self) }
        ) { cluster in
            let (heir, leaver, observer) = (cluster.node(0), cluster.node(1), cluster.node(2))
            // A ledger the leaver owns and the heir owns once the leaver is out of the ring.
            let key = (0..<10_000).map { "acct-\($0)" }.first {
                let id = ActorID(typeName: Ledger.typeName, key: $0)
                return Placement.owner(of: id, among: [heir.nodeID, leaver.nodeID, observer.nodeID]) == leaver.nodeID
                    && Placement.owner(of: id, among: [heir.nodeID, observer.nodeID]) == heir.nodeID
            }!
            _ = try await observer.actor(Ledger.self, key: key).ask(.deposit(amount: 42), idempotencyKey: "first")
            // The leaver cannot reach the heir while it drains, so its push never lands; the heir still learns
            // of the leave through the observer's gossip.
            cluster.network.partition(heir.address, leaver.address)
            let (moved, failed) = await cluster.leave(1)
            #expect(moved == 0)
            #expect(failed == 1)
            cluster.network.healAll()
            try await eventually("the heir sees the leaver leaving", within: .seconds(10)) {
                heir.members.first { $0.nodeID == leaver.nodeID }?.status == .leaving
            }
            #expect(heir.owner(of: ActorID(typeName: Ledger.typeName, key: key)) == heir.nodeID)
            await expectUnavailable(heir, key, "its state is still on the node that left")
            await expectUnavailable(observer, key, "through another node too")
            // Nothing started here: the heir's journal holds nothing of the ledger.
            #expect(try await !heir.journal.holding(of: ActorID(typeName: Ledger.typeName, key: key)).isHeld)
            // The node rejoins (a new incarnation): its ledger is back with its balance.
            let back = try await cluster.restart(1)
            try await cluster.waitForConvergence()
            try await eventually("the ledger answers again with its balance", within: .seconds(10)) {
                (try? await back.actor(Ledger.self, key: key).ask(.balance, timeout: .seconds(1)))?.balance == 42
            }
            let retried = try await observer.actor(Ledger.self, key: key).ask(
                .deposit(amount: 42), idempotencyKey: "first")
            #expect(retried.balance == 42, "the retried key is answered from the journal")
        }
    }
}
