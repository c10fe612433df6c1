import CSQLite
import Foundation
import PlexCore
import Testing

@testable import PlexJournal

@Suite("Unfiled entries")
struct UnfiledEntriesTests {
    @Test("the oldest backlogs are filed first, full ones at once, and the watermark is the oldest unfiled row")
    func oldestFirst() {
        var unfiled = UnfiledEntries()
        func add(_ actor: ActorID, _ sequence: UInt64, bytes: Int = 10, key: String? = nil) {
            unfiled.add(
                row: unfiled.claimRow(), actor: actor, sequence: sequence, messageKey: key, bytes: bytes,
                actorLimit: 100)
        }
        for (actor, sequence) in [(counterA, 1), (counterB, 1), (counterA, 2), (counterB, 2), (counterA, 3)] {
            add(actor, UInt64(sequence))
        }
        #expect(unfiled.count == 5 && unfiled.bytes == 50)
        #expect(unfiled.watermark() == 1)
        var limits = UnfiledEntries.Limits(bytes: 40, actorBytes: 100, span: 100)
        #expect(unfiled.due(limits) == [counterA])  // A's backlog began first, and has 30 bytes
        limits.bytes = 10
        #expect(unfiled.due(limits) == [counterA, counterB])
        limits.bytes = 50
        #expect(unfiled.due(limits).isEmpty)
        limits.span = 4  // rows 1…5 are in the log: the oldest backlog is due, however small
        #expect(unfiled.due(limits) == [counterA])
        limits.span = 100
        #expect(unfiled.remove(counterA) == [1, 3, 5])
        #expect(unfiled.watermark() == 2)  // B's first row
        // A begins a new backlog after B's: its stale queue entry is skipped.
        add(counterA, 4, key: "k")
        limits.bytes = 10
        #expect(unfiled.due(limits) == [counterB])
        #expect(unfiled.remove(counterB) == [2, 4])
        #expect(unfiled.watermark() == 6)
        #expect(unfiled.backlogs[counterA]?.keys == ["k": 6])
        #expect(unfiled.backlogs[counterA]?.lastSequence == 4)
        // A backlog that reaches the per-actor limit is due at once, even under the byte limit.
        add(counterA, 5, bytes: 95)
        limits.bytes = 1000
        #expect(unfiled.due(limits) == [counterA])
        #expect(unfiled.due(limits).isEmpty)  // reported once
        _ = unfiled.remove(counterA)
        #expect(unfiled.watermark() == 8)  // nothing unfiled: the next row
        #expect(unfiled.count == 0 && unfiled.bytes == 0)
    }

    /// The rows left in a shard's log.
    func logRows(_ journal: Journal) async throws -> Int {
        try await journal.writer.perform(filing: .none) { connection throws(JournalError) in
            let statement = try connection.statement("SELECT COUNT(*) FROM log")
            return try statement.step() ? Int(statement.int64(0)) : -1
        }
    }

    @Test("past the limit, group commits file the oldest backlogs and trim the log; reads see every entry")
    func filedPastTheLimit() async throws {
        let journal = try await Journal.open(
            path: temporaryJournalPath(), configuration: .init(shards: 1, unfiledBytes: 8 * 40))
        let actors = (0..<10).map { ActorID(typeName: "t", key: "\($0)") }
        for round in 1...20 {
            try await journal.append(actors.map { entry($0, UInt64(round)) })
        }
        #expect(journal.writer.unfiled.bytes <= 8 * 40 + actors.count * 50)  // the limit and one append
        #expect(try await logRows(journal) < 3 * actors.count + 8)  // filed rows are trimmed a round later
        for actor in actors {
            #expect(try await journal.entries(for: actor).map(\.sequence) == Array(1...20))
        }
        // A duplicate of a filed entry is refused as the primary key would have refused it.
        let error = await #expect(throws: JournalError.self) { try await journal.append([entry(actors[0], 20)]) }
        #expect(error?.resultCode.map { $0 & 0xFF } == SQLITE_CONSTRAINT)
        await journal.close()
    }

    @Test("a pruning checkpoint drops what it covers, except keyed rows; the log is trimmed only past it")
    func pruneDrops() {
        var unfiled = UnfiledEntries()
        for sequence in UInt64(1)...4 {
            unfiled.add(
                row: unfiled.claimRow(), actor: counterA, sequence: sequence, messageKey: sequence == 2 ? "k" : nil,
                bytes: 10)
        }
        unfiled.add(row: unfiled.claimRow(), actor: counterB, sequence: 1, messageKey: nil, bytes: 10)
        unfiled.prune(counterA, through: 3)
        #expect(unfiled.backlogs[counterA]?.rows == [2, 4])
        #expect(unfiled.count == 3 && unfiled.bytes == 30)
        #expect(unfiled.watermark() == 1)  // row 1 is dropped, but A's backlog still began there
        unfiled.prune(counterB, through: 1)
        #expect(unfiled.backlogs[counterB] == nil && unfiled.count == 2)
        _ = unfiled.remove(counterA)
        #expect(unfiled.watermark() == 6)
        #expect(unfiled.count == 0 && unfiled.bytes == 0)
    }

    /// A copy of the journal's files as they are on disk now, as a crash would leave them.
    func crashCopy(of path: String) throws -> String {
        let copy = temporaryJournalPath()
        for suffix in ["", "-wal"] where FileManager.default.fileExists(atPath: path + suffix) {
            try FileManager.default.copyItem(atPath: path + suffix, toPath: copy + suffix)
        }
        return copy
    }

    @Test("entries still unfiled at a crash are read from the log after it, less what a checkpoint covers")
    func unfiledAfterCrash() async throws {
        let path = temporaryJournalPath()
        let journal = try await Journal.open(path: path, configuration: .init(shards: 1))
        try await journal.append((1...5).map { entry(counterA, $0) } + [entry(counterB, 1, key: "kept")])
        // Covers A#1…3 (pruning them from what is filed) and B#1 (whose key is retained).
        journal.writeCheckpoint(
            Checkpoint(actor: counterA, sequence: 3, time: 0, state: [3]), after: .completed(.success(())),
            pruningKeysBefore: 0)
        try await journal.write(Checkpoint(actor: counterB, sequence: 1, time: 0, state: [1]), pruningKeysBefore: 0)
        // A#4 and A#5: the checkpoint dropped A#1…3, and writing B's checkpoint filed B's.
        #expect(journal.writer.unfiled.count == 2)
        let crashed = try crashCopy(of: path)
        await journal.close()

        let reopened = try await Journal.open(path: crashed, configuration: .init(shards: 1))
        #expect(reopened.writer.unfiled.count == 2)  // A#4 and A#5; B#1 was filed
        #expect(try await reopened.entries(for: counterA).map(\.sequence) == [4, 5])
        #expect(try await reopened.entries(for: counterB).map(\.idempotencyKey) == ["kept"])
        #expect(try await reopened.statistics().entries == 3)
        #expect(try await reopened.heldActors() == [counterA, counterB])
        // The next append follows the checkpoint and the entries, filed or not.
        await #expect(throws: JournalError.self) { try await reopened.append([entry(counterA, 5)]) }
        try await reopened.clearFailure(of: counterA)
        try await reopened.append([entry(counterA, 6)])
        try await reopened.flushWriteAheadLog()  // files everything
        #expect(reopened.writer.unfiled.count == 0)
        #expect(try await reopened.entries(for: counterA).map(\.sequence) == [4, 5, 6])
        await reopened.close()
    }

    @Test("a journal that filled up opens after a crash, writing nothing, and reads every acknowledged entry")
    func fullAfterCrash() async throws {
        let path = temporaryJournalPath()
        let configuration = JournalConfiguration(maximumBytes: 128 * 1024, shards: 1)
        let journal = try await Journal.open(path: path, configuration: configuration)
        var acknowledged: [UInt64] = []
        for sequence in UInt64(1)...1000 {
            var padded = entry(counterA, sequence)
            padded.payload = [UInt8](repeating: 7, count: 2000)
            do {
                try await journal.append([padded])
                acknowledged.append(sequence)
            } catch let error as JournalError {
                #expect(error.code == .diskFull)
                break
            }
        }
        #expect(!acknowledged.isEmpty && acknowledged.count < 1000)
        let crashed = try crashCopy(of: path)
        await journal.close()
        // Filing the log on open would need pages the file may not have: opening leaves it as it is.
        let reopened = try await Journal.open(path: crashed, configuration: configuration)
        #expect(try await logRows(reopened) == acknowledged.count)
        #expect(reopened.writer.unfiled.count == acknowledged.count)
        #expect(try await reopened.entries(for: counterA).map(\.sequence) == acknowledged)
        #expect(try await reopened.statistics().entries == acknowledged.count)
        await reopened.close()
    }

    @Test("closing files every entry, so the next open has nothing to read from the log")
    func closingFiles() async throws {
        let path = temporaryJournalPath()
        let journal = try await Journal.open(path: path, configuration: .init(shards: 1))
        try await journal.append((1...5).map { entry(counterA, $0) })
        #expect(journal.writer.unfiled.count == 5)
        await journal.close()
        let reopened = try await Journal.open(path: path, configuration: .init(shards: 1))
        #expect(reopened.writer.unfiled.count == 0)
        #expect(try await reopened.entries(for: counterA).map(\.sequence) == [1, 2, 3, 4, 5])
        await reopened.close()
    }

    @Test("an idempotency key is found whether its message is filed or not")
    func keyLookup() async throws {
        let journal = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 1))
        var keyed = entry(counterA, 1, key: "once")
        keyed.reply = [42]
        try await journal.append([keyed, entry(counterA, 2)])
        #expect(journal.writer.unfiled.count == 2)
        let unfiled = try await journal.message(for: counterA, idempotencyKey: "once", notBefore: 0)
        #expect(unfiled?.sequence == 1 && unfiled?.reply == [42])
        #expect(try await journal.message(for: counterA, idempotencyKey: "once", notBefore: .max) == nil)
        try await journal.flushWriteAheadLog()  // files everything
        #expect(journal.writer.unfiled.count == 0)
        let filed = try await journal.message(for: counterA, idempotencyKey: "once", notBefore: 0)
        #expect(filed?.sequence == 1 && filed?.reply == [42])
        #expect(try await journal.message(for: counterA, idempotencyKey: "other", notBefore: 0) == nil)
        await journal.close()
    }
}
