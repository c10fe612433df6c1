import PlexCore
import PlexExamples
import PlexJournal
import PlexSpaces
import PlexTestKit
import Synchronization
import Testing

@testable import PlexCluster

/// Deposits into ledgers with an idempotency key per deposit, retrying each key until it is acknowledged,
/// the way a client that must not lose or double a deposit would. Counts what was acknowledged.
final class Depositor: Sendable {
    let acknowledged = Mutex<[String: Int]>([:])
    let keys = Mutex<[String: [String]]>([:])
    /// Each acknowledged deposit's reply, by account, in the order they came back: balances that do not rise
    /// by one tell a fork (two copies each took a deposit) from a lost tail.
    let replies = Mutex<[String: [(key: String, reply: Ledger.Reply)]]>([:])
    let stop = Atomic<Bool>(false)

    /// What a failed check prints: `account`'s acknowledged deposits (key, node, balance), then the captured
    /// log lines that name it.
    func explain(_ account: String, logs: LogCapture) -> String {
        let acked = replies.withLock { $0[account] ?? [] }.map {
            "\($0.key) on \($0.reply.node) -> \($0.reply.balance)"
        }
        let name = "/\(account)"
        let lines = logs.all.filter { $0.contains(name + " ") || $0.hasSuffix(name) }
        return (["acknowledged:"] + acked + ["log:"] + lines).joined(separator: "\n")
    }

    func run(through node: PlexNode, accounts: [String], tag: String) async {
        var round = 0
        while !stop.load(ordering: .relaxed) {
            round += 1
            for account in accounts {
                let key = "\(tag)-\(account)-\(round)"
                while true {
                    do {
                        let reply = try await node.actor(Ledger.self, key: account).ask(
                            .deposit(amount: 1), timeout: .seconds(5), idempotencyKey: key)
                        acknowledged.withLock { $0[account, default: 0] += 1 }
                        keys.withLock { $0[account, default: []].append(key) }
                        replies.withLock { $0[account, default: []].append((key, reply)) }
                        break
                    } catch {
                        try? await Task.sleep(for: .milliseconds(20))
                    }
                }
            }
        }
    }
}

@Suite("Handoff of durable actors", .timeLimit(.minutes(3)))
struct HandoffClusterTests {
    static let accounts = (0..<24).map { "acct-\($0)" }

    /// Deposits `index + 1` into each account once, with the key `first-<account>`.
    func seed(through node: PlexNode) async throws {
        for (index, account) in Self.accounts.enumerated() {
            _ = try await node.actor(Ledger.self, key: account).ask(
                .deposit(amount: index + 1), idempotencyKey: "first-\(account)")
        }
    }

    /// Every account has its seeded balance plus `extra`, and a retry of the first deposit's key is answered
    /// from the stored reply (from the node that first ran it) without running again.
    func expectSeeded(through node: PlexNode, firstRanOn: [String: String], extra: [String: Int] = [:])
        async throws
    {
        for (index, account) in Self.accounts.enumerated() {
            let ledger = node.actor(Ledger.self, key: account)
            let balance = try await ledger.ask(.balance)
            #expect(balance.balance == index + 1 + extra[account, default: 0], "\(account)")
            let retried = try await ledger.ask(.deposit(amount: index + 1), idempotencyKey: "first-\(account)")
            #expect(retried.node == firstRanOn[account], "\(account): the retry ran again")
            #expect(retried.balance == index + 1, "\(account)")
        }
    }

    /// Seeds the accounts through node 0, then starts a third node; returns the owners before it joined,
    /// the joined node, and the accounts that moved to it (at least one).
    func seedAndJoin(_ cluster: TestCluster) async throws -> (
        firstOwners: [String: String], joined: PlexNode, moved: [String]
    ) {
        let caller = cluster.node(0)
        try await seed(through: caller)
        let firstOwners = owners(caller)
        let joined = try await cluster.addNode()
        try await cluster.waitForConvergence()
        let moved = Self.accounts.filter { owners(caller)[$0] == joined.nodeID.rawValue }
        #expect(!moved.isEmpty)
        return (firstOwners, joined, moved)
    }

    func owners(_ node: PlexNode) -> [String: String] {
        Dictionary(
            uniqueKeysWithValues: Self.accounts.map {
                ($0, node.owner(of: ActorID(typeName: Ledger.typeName, key: $0))?.rawValue ?? "")
            })
    }

    @Test(
        "a graceful leave hands each durable actor with its idempotency keys to the new owner, under load",
        arguments: TestTransport.allCases)
    func leave(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 3, transport: transport, register: { $0.registerExamples() }) { cluster in
            let caller = cluster.node(0)
            let leaving = cluster.node(2)
            try await seed(through: caller)
            let firstOwners = owners(caller)
            let onLeaving = Self.accounts.filter { firstOwners[$0] == leaving.nodeID.rawValue }
            #expect(!onLeaving.isEmpty)

            // Keep depositing into the leaving node's actors while it leaves.
            let depositor = Depositor()
            let load = Task { await depositor.run(through: caller, accounts: onLeaving, tag: "load") }
            try await eventually("deposits flow") { depositor.acknowledged.withLock { $0.count } == onLeaving.count }
            let result = await cluster.leave(2)
            #expect(result.failed == 0)
            // Under load a new owner may pull an actor it is called for before the leaving node's round pushes
            // it (a pull is not counted as moved); that every actor arrived whole is checked below.
            #expect(result.moved <= onLeaving.count, "\(result)")
            try await eventually("deposits flow after the leave") {
                depositor.acknowledged.withLock { $0.values.reduce(0, +) } > 3 * onLeaving.count
            }
            depositor.stop.store(true, ordering: .relaxed)
            await load.value

            #expect(owners(caller).values.allSatisfy { $0 != leaving.nodeID.rawValue })
            // Every acknowledged key is in the new owner's journal (not just counted in the balance).
            for account in onLeaving {
                let id = ActorID(typeName: Ledger.typeName, key: account)
                let owner = try #require(cluster.nodes.first { $0.nodeID == caller.owner(of: id) })
                let present = Set(try await owner.journal.entries(for: id).compactMap(\.idempotencyKey))
                let missing = depositor.keys.withLock { $0[account] ?? [] }.filter { !present.contains($0) }
                #expect(missing.isEmpty, "\(account) on \(owner.nodeID) lost acknowledged deposits")
            }
            try await expectSeeded(
                through: caller, firstRanOn: firstOwners, extra: depositor.acknowledged.withLock { $0 })
        }
    }

    @Test("a node that left and rejoins takes its actors back; nothing is lost either way")
    func rejoin() async throws {
        try await withTestCluster(nodes: 3, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let caller = cluster.node(0)
            try await seed(through: caller)
            let firstOwners = owners(caller)
            let leftNode = cluster.node(2).nodeID
            await cluster.leave(2)
            try await expectSeeded(through: caller, firstRanOn: firstOwners)

            let back = try await cluster.restart(2, seedFrom: 0)
            try await cluster.waitForConvergence()
            #expect(owners(caller) == firstOwners)
            try await expectSeeded(through: caller, firstRanOn: firstOwners)
            // The actors it owns run there again, on the state that came back.
            for account in Self.accounts where firstOwners[account] == leftNode.rawValue {
                let reply = try await caller.actor(Ledger.self, key: account).ask(.deposit(amount: 100))
                #expect(reply.node == leftNode.rawValue)
            }
            let held = try await back.journal.heldActors().map(\.key)
            #expect(Set(held) == Set(Self.accounts.filter { firstOwners[$0] == leftNode.rawValue }))
        }
    }

    @Test("a joining node receives the durable actors it now owns", arguments: TestTransport.allCases)
    func join(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 2, transport: transport, register: { $0.registerExamples() }) { cluster in
            let caller = cluster.node(0)
            let (firstOwners, joined, moved) = try await seedAndJoin(cluster)
            try await expectSeeded(through: caller, firstRanOn: firstOwners)
            for account in moved {
                #expect(
                    try await caller.actor(Ledger.self, key: account).ask(.deposit(amount: 1)).node
                        == joined.nodeID.rawValue)
                // The previous owner keeps a tombstone and never activates its stale copy.
                let previous = cluster.nodes.first { $0.nodeID.rawValue == firstOwners[account] }!
                let holding = try await previous.journal.holding(of: ActorID(typeName: Ledger.typeName, key: account))
                #expect(holding.movedTo == joined.nodeID)
            }
        }
    }

    @Test(
        "two nodes joining in quick succession under load: every acknowledged deposit is kept, once",
        arguments: 0..<3)
    func doubleJoin(round: Int) async throws {
        try await withTestCluster(nodes: 1, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let caller = cluster.node(0)
            try await seed(through: caller)
            let depositor = Depositor()
            let load = Task { await depositor.run(through: caller, accounts: Self.accounts, tag: "d\(round)") }
            func total() -> Int { depositor.acknowledged.withLock { $0.values.reduce(0, +) } }
            try await eventually("deposits before the joins") { total() >= Self.accounts.count }
            // Slow frames keep pushes for the first ring change in flight while the second one happens.
            cluster.network.setDelay(.milliseconds(5 + 10 * round))
            try await cluster.addNode()
            try await cluster.addNode()
            try await cluster.waitForConvergence()
            let converged = total()
            try await eventually("deposits after the joins", within: .seconds(30)) {
                total() >= converged + 2 * Self.accounts.count
            }
            depositor.stop.store(true, ordering: .relaxed)
            await load.value
            let acknowledged = depositor.acknowledged.withLock { $0 }
            for (index, account) in Self.accounts.enumerated() {
                let balance = try await caller.actor(Ledger.self, key: account).ask(.balance).balance
                #expect(
                    balance == index + 1 + acknowledged[account, default: 0],
                    "\(account)\n\(depositor.explain(account, logs: cluster.logs))")
            }
        }
    }

    @Test("after a member that took actors over is removed, the previous holders take them back and keep them")
    func removedReceiver() async throws {
        try await withTestCluster(nodes: 2, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let caller = cluster.node(0)
            let (firstOwners, joined, moved) = try await seedAndJoin(cluster)
            for account in moved {  // they run on the new node, after the handoff
                #expect(
                    try await caller.actor(Ledger.self, key: account).ask(.deposit(amount: 1)).node
                        == joined.nodeID.rawValue)
            }
            await cluster.crash(2)
            try await eventually("the crash is noticed by both survivors (removal needs their agreement)") {
                cluster.nodes.allSatisfy { $0.members.first { $0.nodeID == joined.nodeID }?.reachable == false }
            }
            #expect(await caller.admin.remove(joined.nodeID).hasPrefix("removed"))
            try await eventually("the other node sees the removal") {
                cluster.node(1).members.first { $0.nodeID == joined.nodeID }?.status == .removed
            }
            for account in moved {
                // As `plex cluster remove` says: the deposit made on the removed node is lost; the copy the
                // previous holder handed over comes back.
                let index = Self.accounts.firstIndex(of: account)!
                let reply = try await caller.actor(Ledger.self, key: account).ask(.balance)
                #expect(reply.balance == index + 1 && reply.node == firstOwners[account], "\(account)")
                // Held again, not a tombstone: handoff rounds and reminders see it.
                let holder = cluster.nodes.first { $0.nodeID.rawValue == firstOwners[account] }!
                #expect(try await holder.journal.holding(of: ActorID(typeName: Ledger.typeName, key: account)).isHeld)
            }
        }
    }
    @Test(
        "actors handed to a member that is removed come back from their previous holders, also to an owner that joins later"
    )
    func removedReceiverThenReplacement() async throws {
        try await withTestCluster(nodes: 2, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let caller = cluster.node(0)
            let (_, joined, moved) = try await seedAndJoin(cluster)
            for account in moved {
                #expect(
                    try await caller.actor(Ledger.self, key: account).ask(.deposit(amount: 1)).node
                        == joined.nodeID.rawValue)
            }
            await cluster.crash(2)
            try await eventually("the crash is noticed by both survivors (removal needs their agreement)") {
                cluster.nodes.allSatisfy { $0.members.first { $0.nodeID == joined.nodeID }?.reachable == false }
            }
            #expect(await caller.admin.remove(joined.nodeID).hasPrefix("removed"))
            // A replacement joins before anyone calls the moved actors; it wins some of them.
            let replacement = try await cluster.addNode()
            try await cluster.waitForConvergence()
            let won = moved.filter {
                caller.owner(of: ActorID(typeName: Ledger.typeName, key: $0)) == replacement.nodeID
            }
            try #require(!won.isEmpty, "the replacement owns none of the moved ledgers; pick other keys")
            for account in moved {
                // The previous holder's copy (before the deposit on the removed node), never a fresh start.
                let index = Self.accounts.firstIndex(of: account)!
                let reply = try await caller.actor(Ledger.self, key: account).ask(.balance)
                #expect(reply.balance == index + 1, "\(account) on \(reply.node)")
            }
        }
    }
}
