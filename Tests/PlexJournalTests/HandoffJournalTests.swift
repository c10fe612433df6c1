import PlexCore
import Testing

@testable import PlexJournal

@Suite("Journal handoff records")
struct HandoffJournalTests {
    let node1 = NodeID(unchecked: "node-1")
    let node2 = NodeID(unchecked: "node-2")
    let node3 = NodeID(unchecked: "node-3")

    /// A sender with a checkpoint at 2, one keyed entry before it (recent), one old keyed entry and an entry
    /// after the checkpoint.
    func sender() async throws -> Journal {
        let journal = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 2))
        var old = entry(counterA, 1, key: "old")
        old.time = 1_000
        try await journal.append([old, entry(counterA, 2, key: "recent"), entry(counterA, 3)])
        try await journal.write(Checkpoint(actor: counterA, sequence: 2, time: 5, state: [42]))
        return journal
    }

    @Test("a transfer carries the checkpoint, later entries and retained keys; the sender keeps a tombstone")
    func transfer() async throws {
        let from = try await sender()
        let start = try await from.beginHandOff(counterA, to: node2, keysSince: 1_000_000)
        guard case .transfer(let transfer) = start else {
            Issue.record("expected a transfer, got \(start)")
            return
        }
        #expect(transfer.epoch == 1)
        let lineage = try await from.lineage(of: counterA)
        #expect(transfer.lineage != nil && transfer.lineage == lineage?.id)
        #expect(transfer.sequences == 2...3)
        #expect(transfer.checkpoint?.state == [42])
        #expect(transfer.entries.map(\.sequence) == [2, 3])  // the old key (time 1000) stays behind
        #expect(try await from.holding(of: counterA).movedTo == node2)
        #expect(try await from.heldActors().isEmpty)
        // Asked again (the receiver pulls after a push was lost): the same epoch, the same content, marked as
        // a repeat (the receiver may have it already, so a refusal must not reclaim it).
        #expect(try await from.beginHandOff(counterA, to: node2, keysSince: 1_000_000) == .repeated(transfer))
        // Asked by a third node: the actor is elsewhere.
        #expect(try await from.beginHandOff(counterA, to: node3, keysSince: 0) == .movedTo(node2))
        #expect(try await from.beginHandOff(counterB, to: node2, keysSince: 0) == .notHeld)

        let to = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 2))
        #expect(try await to.adopt(transfer, from: node1) == .stored)
        #expect(try await to.entries(for: counterA).map(\.sequence) == [2, 3])
        #expect(try await to.lineage(of: counterA) == Lineage(id: transfer.lineage!, epoch: 1, lastSequence: 3))
        #expect(try await to.latestCheckpoint(for: counterA)?.sequence == 2)
        #expect(try await to.message(for: counterA, idempotencyKey: "recent", notBefore: 0) != nil)
        let holding = try await to.holding(of: counterA)
        #expect(holding.epoch == 1 && holding.isHeld)
        // A repeat of the same epoch is ignored, so entries written since are kept.
        try await to.append([entry(counterA, 4)])
        #expect(try await to.adopt(transfer, from: node1) == .alreadyHad)
        #expect(try await to.lastSequence(for: counterA) == 4)
        #expect(try await to.heldActors() == [counterA])

        // Back to the first node: the same lineage, a higher epoch, further: it extends the copy there (the
        // entries it had stay) and clears its tombstone.
        guard case .transfer(let back) = try await to.beginHandOff(counterA, to: node1, keysSince: 0) else {
            Issue.record("expected a transfer back")
            return
        }
        #expect(back.epoch == 2 && back.lineage == transfer.lineage)
        #expect(try await from.adopt(back, from: node2) == .stored)
        #expect(
            try await from.holding(of: counterA)
                == ActorHolding(epoch: 2, movedTo: nil, hasData: true, isRecorded: true))
        #expect(try await from.entries(for: counterA).map(\.sequence) == [1, 2, 3, 4])
        #expect(try await from.lineage(of: counterA) == Lineage(id: transfer.lineage!, epoch: 2, lastSequence: 4))
        #expect(try await from.divergedCopies().isEmpty)
        await from.close()
        await to.close()
    }

    @Test("a reclaimed actor is held again, at an epoch above the copy it had handed away")
    func reclaim() async throws {
        let journal = try await sender()
        guard case .transfer(let transfer) = try await journal.beginHandOff(counterA, to: node2, keysSince: 0) else {
            Issue.record("expected a transfer")
            return
        }
        #expect(try await journal.holding(of: counterA).isHeld == false)
        try await journal.reclaim(counterA)
        let holding = try await journal.holding(of: counterA)
        #expect(holding.isHeld && holding.epoch == transfer.epoch + 1)
        #expect(try await journal.heldActors() == [counterA])
        // The receiver's copy, should it come back, is older: it is ignored.
        #expect(try await journal.adopt(transfer, from: node2) == .alreadyHad)
        try await journal.reclaim(counterA)  // nothing to reclaim: unchanged
        #expect(try await journal.holding(of: counterA).epoch == transfer.epoch + 1)
        await journal.close()
    }

    @Test("recording a fresh actor as held makes it held without data")
    func recordHeld() async throws {
        let journal = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 2))
        #expect(try await journal.holding(of: counterB).isHeld == false)
        try await journal.recordHeld(counterB)
        try await journal.recordHeld(counterB)
        #expect(
            try await journal.holding(of: counterB)
                == ActorHolding(epoch: 0, movedTo: nil, hasData: false, isRecorded: true))
        await journal.close()
    }
}
