import Foundation
import PlexCore
import PlexExamples
import PlexJournal
import PlexSpaces
import PlexTestKit
import PlexWire
import Testing

@testable import PlexCluster

@Suite("Lineages across nodes", .timeLimit(.minutes(2)))
struct LineageClusterTests {
    @Test("a node that started an actor from nothing cannot replace its owner's history by handing it over")
    func impostorCannotReplaceHistory() async throws {
        try await withTestCluster(nodes: 3, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            // As observed: node-1 owns the ledger and acknowledged two deposits of 100.
            let caller = cluster.node(0)
            let owner = cluster.node(1)
            let impostor = cluster.node(2)
            let account = key(Ledger.self, ownedBy: owner.nodeID, on: caller)
            let id = ActorID(typeName: Ledger.typeName, key: account)
            let ledger = caller.actor(Ledger.self, key: account)
            _ = try await ledger.ask(.deposit(amount: 100))
            #expect(try await ledger.ask(.deposit(amount: 100)).balance == 200)
            let history = try #require(try await owner.journal.lineage(of: id))

            // node-3 ran the actor alone, from nothing: one deposit of 1, acknowledged there (its reply encoded
            // as `Ledger.Reply` is).
            struct Reply: Codable {
                var balance: Int
                var operations: Int
                var node: String
            }
            let codec = BinaryMessageCodec()
            let started = JournalEntry(
                actor: id, sequence: 1, kind: .message, time: Int64(Date().timeIntervalSince1970 * 1000),
                callID: CallID(origin: 3, sequence: 1), payload: try codec.encode(Ledger.Request.deposit(amount: 1)),
                reply: try codec.encode(Reply(balance: 1, operations: 1, node: impostor.nodeID.rawValue)))
            try await impostor.journal.append([started])
            let forked = try #require(try await impostor.journal.lineage(of: id))
            #expect(forked.id != history.id)

            // It hands its copy to the owner, as it did when the cluster came back (at epoch 1).
            #expect(await impostor.handoff.push(id, to: owner.nodeID))

            // The owner refused it and kept it aside; its history and balance are intact.
            let kept = try await owner.journal.divergedCopies(of: id)
            #expect(kept.count == 1)
            #expect(kept.first?.from == impostor.nodeID && kept.first?.reason == .refused)
            #expect(kept.first?.transfer.lineage == forked.id && kept.first?.transfer.epoch == 1)
            #expect(kept.first?.transfer.entries == [started])
            #expect(try await owner.journal.statistics().divergedCopies == 1)
            #expect(try await owner.journal.lineage(of: id)?.id == history.id)
            for node in cluster.nodes {
                let reply = try await node.actor(Ledger.self, key: account).ask(.balance)
                #expect(reply.balance == 200 && reply.node == owner.nodeID.rawValue)
            }
            // node-3 keeps its tombstone (it never serves its copy again), and both ends said so loudly. The
            // outcome is known, so node-3 does not push it again every round or hold back its `done`.
            #expect(try await impostor.journal.holding(of: id).movedTo == owner.nodeID)
            #expect(impostor.handoff.state.withLock { $0.unconfirmed.isEmpty })
            #expect(cluster.logs.all.contains { $0.contains("refused a copy of an actor") && $0.contains("\(id)") })
            #expect(cluster.logs.all.contains { $0.contains("handoff refused: the owner holds another history") })

            // A repeat (the next handoff round) changes nothing and keeps nothing twice.
            #expect(await impostor.handoff.push(id, to: owner.nodeID))
            #expect(try await owner.journal.divergedCopies(of: id).count == 1)
            #expect(try await ledger.ask(.deposit(amount: 1)).balance == 201)
        }
    }

    @Test("a transfer's lineage and sequences travel on the wire and are checked against what it carries")
    func wireForm() throws {
        let id = ActorID(typeName: Ledger.typeName, key: "w")
        let entries = (3...5).map {
            JournalEntry(actor: id, sequence: $0, kind: .message, time: 1, idempotencyKey: "k\($0)", payload: [1])
        }
        let transfer = ActorTransfer(
            actor: id, epoch: 2, lineage: .random(),
            checkpoint: Checkpoint(actor: id, sequence: 2, time: 1, state: [9]),
            entries: entries)
        let message = transfer.message
        #expect(message.firstSequence == 2 && message.lastSequence == 5 && message.lineage.count == 16)
        #expect(try ActorTransfer(message) == transfer)

        var lying = message
        lying.lastSequence = 9
        let wrongRange = #expect(throws: CallError.self) { try ActorTransfer(lying) }
        #expect(wrongRange?.code == .invalidRequest)
        var short = message
        short.lineage = Data([1, 2, 3])
        let badLineage = #expect(throws: CallError.self) { try ActorTransfer(short) }
        #expect(badLineage?.code == .invalidRequest)
        var rangeOnly = message
        rangeOnly.lineage = Data()
        let noLineage = #expect(throws: CallError.self) { try ActorTransfer(rangeOnly) }
        #expect(noLineage?.code == .invalidRequest)

        // From a build before lineages: no lineage, no range; entries mean the legacy lineage.
        var old = message
        old.lineage = Data()
        old.firstSequence = 0
        old.lastSequence = 0
        #expect(try ActorTransfer(old).lineage == .legacy)
        old.entries = []
        old.hasCheckpoint_p = false
        #expect(try ActorTransfer(old).lineage == nil)
    }
}
