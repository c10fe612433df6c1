import PlexCore
import Testing

@testable import PlexJournal

@Suite("Journal recovery reads")
struct RecoveryReadTests {
    /// Checks that ``Journal/recovery(of:upTo:)`` reads what the separate reads give.
    func check(_ journal: Journal, _ actor: ActorID, upTo target: UInt64? = nil) async throws {
        let read = try await journal.recovery(of: actor, upTo: target)
        #expect(read.holding == (try await journal.holding(of: actor)))
        let latest = try await journal.latestCheckpoint(for: actor)
        #expect(read.latestCheckpoint == latest)
        let used = latest.flatMap { $0.sequence <= target ?? .max ? $0 : nil }
        #expect(read.checkpoint == used)
        #expect(read.entries == (try await journal.entries(for: actor, after: used?.sequence ?? 0)))
    }

    @Test("one read gives the holding, the checkpoint and the entries after it, as the separate reads do")
    func matchesSeparateReads() async throws {
        let journal = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 2))
        try await check(journal, counterA)  // nothing yet
        try await journal.append([entry(counterA, 1), entry(counterA, 2, key: "k")])
        try await check(journal, counterA)  // unfiled
        try await journal.flushWriteAheadLog()
        try await check(journal, counterA)  // filed
        try await journal.write(Checkpoint(actor: counterA, sequence: 2, time: 5, state: [42]))
        try await journal.append([entry(counterA, 3)])
        try await check(journal, counterA)
        try await check(journal, counterA, upTo: 1)  // the checkpoint is past the target
        try await check(journal, counterA, upTo: 2)
        try await journal.recordHeld(counterB)  // an ownership row and no data
        try await check(journal, counterB)
        _ = try await journal.beginHandOff(counterA, to: NodeID(unchecked: "node-2"), keysSince: 0)
        try await check(journal, counterA)  // handed away
        #expect(try await journal.recovery(of: counterA).holding.isHeld == false)
        await journal.close()
    }

    @Test("a transfer stored after the read changes the shard's adoption count, so the activation reads again")
    func adoptionAfterRead() async throws {
        let sender = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 2))
        try await sender.append([entry(counterA, 1), entry(counterA, 2)])
        guard
            case .transfer(let transfer) = try await sender.beginHandOff(
                counterA, to: NodeID(unchecked: "node-2"), keysSince: 0)
        else {
            Issue.record("expected a transfer")
            return
        }
        let receiver = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 2))
        let before = try await receiver.recovery(of: counterA)
        #expect(before.entries.isEmpty && !before.holding.isHeld)
        #expect(receiver.adoptions(of: counterA) == before.adoptions)
        #expect(try await receiver.adopt(transfer, from: NodeID(unchecked: "node-1")) == .stored)
        #expect(receiver.adoptions(of: counterA) != before.adoptions)
        let after = try await receiver.recovery(of: counterA)
        #expect(after.entries.map(\.sequence) == [1, 2] && after.holding.isHeld)
        #expect(after.adoptions == receiver.adoptions(of: counterA))
        // A repeat that changes nothing leaves the count alone.
        #expect(try await receiver.adopt(transfer, from: NodeID(unchecked: "node-1")) == .alreadyHad)
        #expect(receiver.adoptions(of: counterA) == after.adoptions)
        await sender.close()
        await receiver.close()
    }
}
