import Foundation
import PlexCore
import Testing

@testable import PlexJournal

@Suite("Pipelined appends")
struct PipelinedAppendTests {
    @Test("queued appends complete in order; after one fails, the actor's later ones fail until it recovers")
    func poison() async throws {
        let journal = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 1))
        try await journal.append([entry(counterA, 1)])
        // Queue a batch while the writer is busy: a duplicate of A#1 (fails), A#2 (ran on a state that
        // included the failed one, so it must fail too), and B#1 (another actor: unaffected).
        let held = try await HeldWriter.hold(journal)
        let duplicate = journal.enqueue([entry(counterA, 1)])
        let follower = journal.enqueue([entry(counterA, 2)])
        let other = journal.enqueue([entry(counterB, 1)])
        #expect(duplicate.result == nil)  // nothing completes before the commit
        try await held.release()
        await #expect(throws: JournalError.self) { try await duplicate.wait() }
        await #expect(throws: JournalError.self) { try await follower.wait() }
        try await other.wait()
        // Still refused until the actor recovers; then accepted.
        await #expect(throws: JournalError.self) { try await journal.enqueue([entry(counterA, 2)]).wait() }
        try await journal.clearFailure(of: counterA)
        try await journal.enqueue([entry(counterA, 2)]).wait()
        #expect(try await journal.entries(for: counterA).map(\.sequence) == [1, 2])
        await journal.close()
    }

    @Test("a checkpoint queued after a write lands only if the write did, and never replaces a later one")
    func checkpointAfterWrite() async throws {
        let journal = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 1))
        let first = journal.enqueue([entry(counterA, 1)])
        journal.writeCheckpoint(
            Checkpoint(actor: counterA, sequence: 1, time: 0, state: [1]), after: first, pruningKeysBefore: nil)
        let failing = journal.enqueue([entry(counterA, 1)])  // a duplicate: fails
        journal.writeCheckpoint(
            Checkpoint(actor: counterA, sequence: 2, time: 0, state: [2]), after: failing, pruningKeysBefore: nil)
        try? await failing.wait()
        #expect(try await journal.latestCheckpoint(for: counterA)?.state == [1])
        try await journal.write(Checkpoint(actor: counterA, sequence: 5, time: 0, state: [5]))
        try await journal.write(Checkpoint(actor: counterA, sequence: 3, time: 0, state: [3]))  // late, older
        #expect(try await journal.latestCheckpoint(for: counterA)?.state == [5])
        await journal.close()
    }

    @Test("checkpoints queued with appends commit in the same transaction as them")
    func checkpointsRideTheGroupCommit() async throws {
        let journal = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 1))
        let held = try await HeldWriter.hold(journal)
        let before = held.commits
        let actors = (1...50).map { ActorID(typeName: "t", key: "\($0)") }
        var writes: [PendingWrite] = []
        for actor in actors {
            let write = journal.enqueue([entry(actor, 1)])
            journal.writeCheckpoint(
                Checkpoint(actor: actor, sequence: 1, time: 0, state: [1]), after: write, pruningKeysBefore: nil)
            writes.append(write)
        }
        try await held.release()
        for write in writes { try await write.wait() }
        let statistics = try await journal.statistics()
        #expect(statistics.commits - before == 1)  // one flush for 50 entries and 50 checkpoints
        #expect(statistics.checkpoints == 50)
        await journal.close()
    }

    @Test("a write riding a group commit that fails undoes only its own changes")
    func failingRider() async throws {
        let journal = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 1))
        let held = try await HeldWriter.hold(journal)
        let write = journal.enqueue([entry(counterA, 1)])
        journal.writer.enqueueRider(after: write) { connection throws(JournalError) in
            try Journal.insert(Checkpoint(actor: counterA, sequence: 1, time: 0, state: [1]), connection)
            try connection.execute("INSERT INTO no_such_table VALUES (1)")
        }
        let later = journal.enqueue([entry(counterB, 1)])
        try await held.release()
        try await write.wait()
        try await later.wait()
        #expect(try await journal.latestCheckpoint(for: counterA) == nil)
        #expect(try await journal.entries(for: counterA).count == 1)
        #expect(try await journal.entries(for: counterB).count == 1)
        await journal.close()
    }
}
