import PlexCore
import Testing

@testable import PlexJournal

/// A history is extended, never replaced: lineages, `adopt`'s refusals and the copies kept aside.
@Suite("Journal lineages")
struct LineageTests {
    let node1 = NodeID(unchecked: "node-1")
    let node2 = NodeID(unchecked: "node-2")
    let node3 = NodeID(unchecked: "node-3")

    /// A journal holding `sequences` of `actor`, started here (a lineage of its own).
    func journal(with actor: ActorID, _ sequences: ClosedRange<UInt64>) async throws -> Journal {
        let journal = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 2))
        try await journal.append(sequences.map { entry(actor, $0) })
        return journal
    }

    /// What `journal` hands to `node` of `actor`.
    func handOff(_ actor: ActorID, from journal: Journal, to node: NodeID) async throws -> ActorTransfer {
        switch try await journal.beginHandOff(actor, to: node, keysSince: 0) {
        case .transfer(let transfer), .repeated(let transfer): return transfer
        case let other: throw TestFailure("expected a transfer, got \(other)")
        }
    }

    @Test("a lineage is created with an actor's first entry, random, and kept across appends and reopening")
    func createdWithFirstEntry() async throws {
        let path = temporaryJournalPath()
        var journal = try await Journal.open(path: path, configuration: .init(shards: 2))
        #expect(try await journal.lineage(of: counterA) == nil)
        try await journal.append([entry(counterA, 1)])
        let first = try #require(try await journal.lineage(of: counterA))
        #expect(first.epoch == 0 && first.lastSequence == 1 && first.id != .legacy)
        try await journal.append([entry(counterA, 2), entry(counterB, 1)])
        #expect(try await journal.lineage(of: counterA) == Lineage(id: first.id, epoch: 0, lastSequence: 2))
        #expect(try await journal.lineage(of: counterB)?.id != first.id)
        await journal.close()
        journal = try await Journal.open(path: path, configuration: .init(shards: 2))
        #expect(try await journal.lineage(of: counterA)?.id == first.id)
        let other = try await self.journal(with: counterA, 1...1)
        #expect(try await other.lineage(of: counterA)?.id != first.id)
        await journal.close()
        await other.close()
    }

    @Test("a copy of another history is refused and kept aside; the history here is untouched, whatever the epoch")
    func divergentRefused() async throws {
        // The observed case: node-1 holds the real history; node-3 started the actor from nothing.
        let owner = try await journal(with: counterA, 1...2)
        let before = try await owner.entries(for: counterA)
        let lineage = try #require(try await owner.lineage(of: counterA))
        let impostor = try await journal(with: counterA, 1...1)
        let transfer = try await handOff(counterA, from: impostor, to: node1)
        #expect(transfer.epoch == 1 && transfer.lineage != lineage.id)

        #expect(try await owner.adopt(transfer, from: node3) == .diverged(held: lineage))
        #expect(try await owner.entries(for: counterA) == before)
        #expect(try await owner.lineage(of: counterA) == lineage)
        #expect(try await owner.holding(of: counterA).isHeld)
        let kept = try await owner.divergedCopies(of: counterA)
        #expect(kept == [DivergedCopy(reason: .refused, from: node3, time: kept.first?.time ?? 0, transfer: transfer)])
        #expect(try await owner.statistics().divergedCopies == 1)

        // Repeated, and at any epoch: still refused; a repeat is not kept twice.
        #expect(try await owner.adopt(transfer, from: node3) == .diverged(held: lineage))
        var later = transfer
        later.epoch = 99
        #expect(try await owner.adopt(later, from: node3) == .diverged(held: lineage))
        #expect(try await owner.entries(for: counterA) == before)
        #expect(try await owner.divergedCopies().map(\.transfer.epoch) == [1, 99])
        #expect(try await owner.divergedCopies(of: counterB).isEmpty)
        await owner.close()
        await impostor.close()
    }

    @Test("a transfer of the receiver's own history, older or changed, never truncates or rewrites it")
    func olderCopyNeverTruncates() async throws {
        let first = try await journal(with: counterA, 1...3)
        let receiver = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 2))
        let old = try await handOff(counterA, from: first, to: node2)
        #expect(try await receiver.adopt(old, from: node1) == .stored)
        try await receiver.append([entry(counterA, 4), entry(counterA, 5)])
        let lineage = try #require(try await receiver.lineage(of: counterA))
        #expect(lineage.id == old.lineage && lineage.lastSequence == 5)

        // The same lineage, stopping at 3, sent again at a higher epoch (taken back by the first node, say).
        var stale = old
        stale.epoch = 7
        #expect(try await receiver.adopt(stale, from: node1) == .diverged(held: lineage))
        #expect(try await receiver.entries(for: counterA).map(\.sequence) == [1, 2, 3, 4, 5])

        // The same lineage reaching further, but with entry 4 different: the copies went separate ways.
        var forked = stale
        forked.epoch = 8
        var changed = entry(counterA, 4)
        changed.payload = [0xFF]
        forked.entries += [changed, entry(counterA, 5), entry(counterA, 6)]
        #expect(try await receiver.adopt(forked, from: node1) == .diverged(held: lineage))
        #expect(try await receiver.entries(for: counterA) == (1...5).map { entry(counterA, $0) })
        #expect(try await receiver.divergedCopies(of: counterA).count == 2)
        #expect(try await receiver.holding(of: counterA).epoch == 1)
        await first.close()
        await receiver.close()
    }

    @Test("a transfer that carries nothing never replaces a history")
    func emptyTransferIgnored() async throws {
        let holder = try await journal(with: counterA, 1...2)
        let empty = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 2))
        try await empty.recordHeld(counterA)
        let transfer = try await handOff(counterA, from: empty, to: node1)
        #expect(transfer.lineage == nil && transfer.sequences == nil)
        #expect(try await holder.adopt(transfer, from: node3) == .alreadyHad)
        #expect(try await holder.entries(for: counterA).map(\.sequence) == [1, 2])
        // To a node with nothing, it records the epoch, as before.
        let nothing = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 2))
        #expect(try await nothing.adopt(transfer, from: node3) == .stored)
        #expect(
            try await nothing.holding(of: counterA)
                == ActorHolding(epoch: 1, movedTo: nil, hasData: false, isRecorded: true))
        await holder.close()
        await empty.close()
        await nothing.close()
    }

    @Test("a copy handed away gives way to another history only from the node it was handed to, and is kept aside")
    func tombstoneGivesWayToItsReceiver() async throws {
        // node-3 started the actor from nothing and handed it to node-1, which refused it (another history).
        let impostor = try await journal(with: counterA, 1...1)
        let own = try await handOff(counterA, from: impostor, to: node1)
        let owner = try await journal(with: counterA, 1...2)
        #expect(try await owner.adopt(own, from: node3) != .stored)

        // A third node's history does not replace node-3's handed-away copy.
        let stranger = try await journal(with: counterA, 1...4)
        let strangers = try await handOff(counterA, from: stranger, to: node3)
        #expect(
            try await impostor.adopt(strangers, from: node2)
                == .diverged(held: Lineage(id: own.lineage!, epoch: 1, lastSequence: 1)))
        #expect(try await impostor.holding(of: counterA).movedTo == node1)

        // The real history, coming back from node-1 (its epoch is 1, not above node-3's: epochs of two
        // lineages are not compared), replaces it; node-3's copy is kept aside.
        let real = try await handOff(counterA, from: owner, to: node3)
        #expect(real.epoch == 1)
        #expect(try await impostor.adopt(real, from: node1) == .stored)
        #expect(try await impostor.entries(for: counterA).map(\.sequence) == [1, 2])
        #expect(try await impostor.entries(for: counterA) == (try await owner.entries(for: counterA)))
        #expect(try await impostor.lineage(of: counterA)?.id == real.lineage)
        #expect(try await impostor.holding(of: counterA).isHeld)
        let kept = try await impostor.divergedCopies(of: counterA)
        #expect(kept.map(\.reason) == [.refused, .superseded])
        #expect(kept.last?.transfer.lineage == own.lineage && kept.last?.from == node1)
        #expect(kept.last?.transfer.entries == own.entries)
        for journal in [impostor, owner, stranger] { await journal.close() }
    }

    @Test("a schema-6 journal is migrated: each actor with data gets the legacy lineage, and its data is kept")
    func migratesFromVersion6() async throws {
        let path = try journalFile(
            atVersion: 6,
            with: """
                INSERT INTO entries (actor, seq, kind, time, payload) VALUES ('counter/a', 1, 1, 0, x'01');
                INSERT INTO entries (actor, seq, kind, time, payload) VALUES ('counter/a', 2, 1, 0, x'02');
                INSERT INTO checkpoints (actor, seq, time, state) VALUES ('counter/b', 4, 0, x'2A');
                INSERT INTO log (id, actor, seq, kind, time, payload) VALUES (1, 'counter/c', 1, 1, 0, x'03');
                INSERT INTO ownership (actor, epoch, moved_to) VALUES ('counter/a', 3, NULL);
                INSERT INTO ownership (actor, epoch, moved_to) VALUES ('counter/d', 1, NULL);
                """)

        let journal = try await Journal.open(path: path, configuration: .init(shards: 1))
        let counterC = ActorID(typeName: "counter", key: "c")
        #expect(try await journal.lineage(of: counterA) == Lineage(id: .legacy, epoch: 3, lastSequence: 2))
        #expect(try await journal.lineage(of: counterB) == Lineage(id: .legacy, epoch: 0, lastSequence: 4))
        #expect(try await journal.lineage(of: counterC) == Lineage(id: .legacy, epoch: 0, lastSequence: 1))
        #expect(try await journal.lineage(of: ActorID(typeName: "counter", key: "d")) == nil)
        #expect(try await journal.entries(for: counterA).map(\.payload) == [[1], [2]])
        #expect(try await journal.entries(for: counterC).map(\.payload) == [[3]])
        #expect(try await journal.latestCheckpoint(for: counterB)?.state == [42])
        #expect(try await journal.statistics().divergedCopies == 0)

        // A legacy copy from another node that extends it is stored; a new history is refused.
        var extended = ActorTransfer(
            actor: counterA, epoch: 4, lineage: .legacy, checkpoint: nil,
            entries: try await journal.entries(for: counterA))
        extended.entries.append(entry(counterA, 3))
        #expect(try await journal.adopt(extended, from: node2) == .stored)
        let fresh = ActorTransfer(
            actor: counterA, epoch: 9, lineage: .random(), checkpoint: nil, entries: [entry(counterA, 1)])
        #expect(
            try await journal.adopt(fresh, from: node3)
                == .diverged(held: Lineage(id: .legacy, epoch: 4, lastSequence: 3)))
        await journal.close()
        let check = try SQLiteConnection(path: path)
        #expect(try check.pragma("user_version") == Schema.current)
        check.close()
    }

    @Test(
        "the adopt rule",
        arguments: [
            // held: data, same lineage, recorded epoch, tombstone to; transfer: epoch, last; sender; overlap → action
            (false, false, nil, nil, 1, 3, "node-2", Overlap.agrees, AdoptDecision.Action.store(settingAside: false)),
            (false, false, 2, nil, 2, 3, "node-2", .agrees, .store(settingAside: false)),
            (false, false, 2, "node-3", 2, 3, "node-2", .agrees, .ignore),
            (false, false, 2, "node-2", 1, 3, "node-2", .agrees, .store(settingAside: false)),
            (true, true, 1, nil, 2, 5, "node-2", .agrees, .store(settingAside: false)),
            (true, true, 1, nil, 2, 5, "node-2", .unverifiable, .store(settingAside: false)),
            (true, true, 1, nil, 2, 5, "node-2", .differs, .keepAside),
            (true, true, 1, nil, 2, 4, "node-2", .agrees, .store(settingAside: false)),
            (true, true, 1, nil, 2, 3, "node-2", .agrees, .keepAside),
            (true, true, 2, nil, 2, 4, "node-2", .agrees, .ignore),
            (true, true, 3, nil, 2, 3, "node-2", .agrees, .ignore),
            (true, true, 3, nil, 2, 3, "node-2", .unverifiable, .ignore),
            // A passed epoch that reaches further or differs split off this copy (a reclaim raced a handoff).
            (true, true, 2, nil, 2, 9, "node-2", .agrees, .keepAside),
            (true, true, 3, nil, 2, 4, "node-2", .differs, .keepAside),
            (true, true, 1, "node-2", 2, 5, "node-2", .agrees, .store(settingAside: false)),
            (true, false, nil, nil, 1, 9, "node-2", .agrees, .keepAside),
            (true, false, 5, "node-3", 9, 9, "node-2", .agrees, .keepAside),
            (true, false, 5, "node-2", 1, 1, "node-2", .agrees, .store(settingAside: true)),
        ] as [(Bool, Bool, UInt64?, String?, UInt64, UInt64, String, Overlap, AdoptDecision.Action)])
    func rule(
        hasData: Bool, sameLineage: Bool, epoch: UInt64?, movedTo: String?, transferEpoch: UInt64, last: UInt64,
        sender: String, overlap: Overlap, action: AdoptDecision.Action
    ) {
        let mine = LineageID.random()
        let held = AdoptDecision.Held(
            hasData: hasData, lineage: hasData ? mine : nil, isRecorded: epoch != nil, epoch: epoch ?? 0,
            movedTo: movedTo.map(NodeID.init(unchecked:)), lastSequence: hasData ? 4 : 0)
        let transfer = ActorTransfer(
            actor: counterA, epoch: transferEpoch, lineage: sameLineage ? mine : .random(), checkpoint: nil,
            entries: [entry(counterA, last)])
        #expect(
            AdoptDecision.decide(held: held, transfer: transfer, from: NodeID(unchecked: sender), overlap: overlap)
                == action)
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
