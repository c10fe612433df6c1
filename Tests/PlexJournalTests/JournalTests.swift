import CSQLite
import Foundation
import PlexCore
import PlexTestKit
import Testing

@testable import PlexJournal

/// The directory of this test process's journals, removed when the process exits (the tests open several
/// hundred journals).
let journalTestRoot = processScratchDirectory("plex-journal-tests")

func temporaryJournalPath() -> String {
    let directory = journalTestRoot + "/\(UUID())"
    try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    return directory + "/journal.sqlite"
}

let counterA = ActorID(typeName: "counter", key: "a")
let counterB = ActorID(typeName: "counter", key: "b")

func entry(_ actor: ActorID, _ sequence: UInt64, kind: JournalEntry.Kind = .message, key: String? = nil) -> JournalEntry
{
    JournalEntry(
        actor: actor, sequence: sequence, kind: kind, time: 1_700_000_000_000 + Int64(sequence),
        callID: CallID(origin: 0xFFFF_FFFF_FFFF_FFFF, sequence: sequence), idempotencyKey: key,
        payload: Array("payload \(sequence)".utf8))
}

@Suite("Journal")
struct JournalTests {
    @Test("appended entries read back in order, per actor, after reopening the file")
    func roundTrip() async throws {
        let path = temporaryJournalPath()
        let journal = try await Journal.open(path: path, configuration: .init(shards: 1))
        var withReply = entry(counterA, 1, key: "k1")
        withReply.reply = [9, 8, 7]
        try await journal.append([withReply, entry(counterA, 2, kind: .sideEffect)])
        try await journal.append([entry(counterB, 1), entry(counterA, 3, kind: .reply)])
        await journal.close()

        let reopened = try await Journal.open(path: path, configuration: .init(shards: 1))
        let a = try await reopened.entries(for: counterA)
        #expect(a.map(\.sequence) == [1, 2, 3])
        #expect(a.map(\.kind) == [.message, .sideEffect, .reply])
        #expect(a[0] == withReply)  // every field, including a call id above Int64.max and the reply
        #expect(a[1].reply == nil)
        #expect(try await reopened.entries(for: counterA, after: 2).map(\.sequence) == [3])
        #expect(try await reopened.entries(for: counterB).count == 1)
        #expect(try await reopened.lastSequence(for: counterA) == 3)
        #expect(try await reopened.lastSequence(for: ActorID(typeName: "counter", key: "none")) == 0)
        await reopened.close()
    }

    @Test("appends queued while the writer is busy commit together, in one transaction")
    func groupCommit() async throws {
        let journal = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 1))
        // Hold the writer thread, queue 100 appends, then let it go: they must land in one commit.
        let held = try await HeldWriter.hold(journal)
        let before = held.commits
        try await withThrowingTaskGroup(of: Void.self) { group in
            for i in 1...100 {
                group.addTask { try await journal.append([entry(ActorID(typeName: "t", key: "\(i)"), 1)]) }
            }
            try await waitUntil { journal.writer.queuedAppends == 100 }
            try await held.release()
            try await group.waitForAll()
        }
        let after = try await journal.statistics()
        #expect(after.commits - before == 1)
        #expect(after.entries == 100)
        #expect(after.actors == 100)
        await journal.close()
    }

    @Test("a bad entry fails only its own append, not the others committed with it")
    func isolation() async throws {
        let journal = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 1))
        try await journal.append([entry(counterA, 1)])
        let held = try await HeldWriter.hold(journal)
        let good = Task { try await journal.append([entry(counterB, 1)]) }
        let duplicate = Task { try await journal.append([entry(counterA, 1)]) }
        try await waitUntil { journal.writer.queuedAppends == 2 }
        try await held.release()
        try await good.value
        let error = await #expect(throws: JournalError.self) { try await duplicate.value }
        #expect(error?.resultCode.map { $0 & 0xFF } == SQLITE_CONSTRAINT)
        #expect(try await journal.entries(for: counterB).count == 1)
        #expect(try await journal.entries(for: counterA).count == 1)
        await journal.close()
    }

    @Test("checkpoints replace each other and survive reopening")
    func checkpoints() async throws {
        let path = temporaryJournalPath()
        let journal = try await Journal.open(path: path, configuration: .init(shards: 1))
        #expect(try await journal.latestCheckpoint(for: counterA) == nil)
        try await journal.write(Checkpoint(actor: counterA, sequence: 10, time: 1, state: [1, 2, 3]))
        try await journal.write(Checkpoint(actor: counterA, sequence: 20, time: 2, state: [4]))
        await journal.close()
        let reopened = try await Journal.open(path: path, configuration: .init(shards: 1))
        #expect(
            try await reopened.latestCheckpoint(for: counterA)
                == Checkpoint(actor: counterA, sequence: 20, time: 2, state: [4]))
        #expect(try await reopened.statistics().checkpoints == 1)
        await reopened.close()
    }

    @Test("a file that is not a journal is refused as corrupt, naming the file")
    func notADatabase() async throws {
        let path = temporaryJournalPath()
        try Data(repeating: 0x41, count: 8192).write(to: URL(fileURLWithPath: path))
        let error = await #expect(throws: JournalError.self) {
            _ = try await Journal.open(path: path, configuration: .init(shards: 1))
        }
        #expect(error?.code == .corrupt)
        #expect(error?.path == path)
        #expect(error?.description.contains(path) == true)
    }

    @Test("a truncated journal is refused as corrupt, never read partially")
    func truncated() async throws {
        let path = temporaryJournalPath()
        let journal = try await Journal.open(path: path, configuration: .init(shards: 1))
        for batch in 0..<20 {
            try await journal.append((1...50).map { entry(ActorID(typeName: "t", key: "\(batch)"), UInt64($0)) })
        }
        await journal.close()
        // Fold the WAL into the main file, then cut the file in half.
        let connection = try SQLiteConnection(path: path)
        try connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        connection.close()
        let size = try FileManager.default.attributesOfItem(atPath: path)[.size] as! Int
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.truncate(atOffset: UInt64(size / 2))
        try handle.close()
        let error = await #expect(throws: JournalError.self) {
            _ = try await Journal.open(path: path, configuration: .init(shards: 1))
        }
        #expect(error?.code == .corrupt)
    }

    @Test("a journal from a newer schema is refused")
    func newerSchema() async throws {
        let path = temporaryJournalPath()
        let connection = try SQLiteConnection(path: path)
        try connection.execute("PRAGMA user_version = 99")
        connection.close()
        let error = await #expect(throws: JournalError.self) {
            _ = try await Journal.open(path: path, configuration: .init(shards: 1))
        }
        #expect(error?.code == .newerSchema)
        #expect(error?.message.contains("99") == true)
    }

    @Test("a closed journal refuses appends with a typed error")
    func closed() async throws {
        let journal = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 1))
        await journal.close()
        let error = await #expect(throws: JournalError.self) { try await journal.append([entry(counterA, 1)]) }
        #expect(error?.code == .closed)
    }
}

/// A journal's first writer thread held inside a job, so that appends queue up until ``release()``.
struct HeldWriter {
    let gate: DispatchSemaphore
    let holder: Task<Void, any Error>
    /// The writer's commit count when it was held.
    let commits: Int

    /// Holds `journal`'s first writer; returns once it is inside the holding job.
    static func hold(_ journal: Journal) async throws -> HeldWriter {
        let gate = DispatchSemaphore(value: 0)
        let inside = DispatchSemaphore(value: 0)
        // Held at most 60 s, so that a failed test cannot hang the run.
        let holder = Task {
            try await journal.writer.perform(filing: .none) { _ throws(JournalError) in
                inside.signal()
                _ = gate.wait(timeout: .now() + .seconds(60))
            }
        }
        // This job itself, not another one the writer happened to be running (appends queued meanwhile would
        // be committed before the hold).
        try await waitUntil { inside.wait(timeout: .now()) == .success }
        return HeldWriter(gate: gate, holder: holder, commits: journal.writer.counters.commits)
    }

    /// Lets the writer go on, and waits for the holding job to end.
    func release() async throws {
        gate.signal()
        try await holder.value
    }
}

func waitUntil(within: Duration = .seconds(10), _ condition: () -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + within
    while !condition() {
        guard clock.now < deadline else { throw CancellationError() }
        try await Task.sleep(for: .milliseconds(1))
    }
}

/// A journal file at schema `version` (every migration before it run, none after) holding what `sql` inserts.
func journalFile(atVersion version: Int, with sql: String) throws -> String {
    let path = temporaryJournalPath()
    let connection = try SQLiteConnection(path: path)
    for step in 0..<version { try connection.execute(Schema.migrations[step]) }
    try connection.execute("PRAGMA user_version = \(version)")
    try connection.execute(sql)
    connection.close()
    return path
}

@Suite("Journal schema")
struct JournalSchemaTests {
    @Test("a version-1 journal is migrated in place and keeps its entries")
    func migratesFromVersion1() async throws {
        let path = temporaryJournalPath()
        let connection = try SQLiteConnection(path: path)
        try connection.execute(Schema.migrations[0])
        try connection.execute("PRAGMA user_version = 1")
        try connection.execute(
            "INSERT INTO entries (actor, seq, kind, time, payload) VALUES ('counter/a', 1, 1, 0, x'01')")
        connection.close()

        let journal = try await Journal.open(path: path, configuration: .init(shards: 1))
        let old = try await journal.entries(for: counterA)
        #expect(old.map(\.sequence) == [1])
        #expect(old.first?.effects == nil)
        var next = entry(counterA, 2)
        next.effects = [7, 7]
        try await journal.append([next])
        #expect(try await journal.entries(for: counterA, after: 1).first?.effects == [7, 7])
        await journal.close()
        let check = try SQLiteConnection(path: path)
        #expect(try check.pragma("user_version") == Schema.current)
        check.close()
    }

    @Test("a schema-7 journal's entries move to the rowid table with their keys, replies and effects")
    func migratesFromVersion7() async throws {
        let path = try journalFile(
            atVersion: 7,
            with: """
                INSERT INTO entries (actor, seq, kind, time, call_origin, call_seq, idempotency_key, payload, reply, effects)
                VALUES ('counter/a', 1, 1, 5, 9, 10, 'k1', x'01', x'02', x'03'),
                       ('counter/a', 2, 1, 6, NULL, NULL, NULL, x'04', NULL, NULL),
                       ('counter/b', 1, 1, 7, NULL, NULL, NULL, x'05', x'', NULL)
                """)

        let journal = try await Journal.open(path: path, configuration: .init(shards: 1))
        let a = try await journal.entries(for: counterA)
        #expect(a.map(\.sequence) == [1, 2])
        #expect(a.first?.idempotencyKey == "k1" && a.first?.reply == [2] && a.first?.effects == [3])
        #expect(a.first?.callID == CallID(origin: 9, sequence: 10) && a.first?.time == 5)
        #expect(a.last?.reply == nil && a.last?.payload == [4])
        #expect(try await journal.entries(for: counterB).map(\.reply) == [[]])
        #expect(try await journal.message(for: counterA, idempotencyKey: "k1", notBefore: 0)?.sequence == 1)
        // The key still refuses a duplicate sequence, and later entries append after the migrated ones.
        await #expect(throws: JournalError.self) { try await journal.append([entry(counterA, 2)]) }
        try await journal.clearFailure(of: counterA)
        try await journal.append([entry(counterA, 3)])
        try await journal.flushWriteAheadLog()
        #expect(try await journal.entries(for: counterA).map(\.sequence) == [1, 2, 3])
        await journal.close()
        let check = try SQLiteConnection(path: path)
        #expect(try check.pragma("user_version") == Schema.current)
        let table = try check.statement("SELECT sql FROM sqlite_schema WHERE name = 'entries'")
        #expect(try table.step() && !(table.text(0) ?? "").contains("WITHOUT ROWID"))
        let index = try check.statement("SELECT COUNT(*) FROM sqlite_schema WHERE name = 'entries_by_idempotency_key'")
        #expect(try index.step() && index.int64(0) == 1)
        check.close()
    }

    @Test("a schema-8 journal's checkpoints and reminders move to rowid tables, keys and order kept")
    func migratesFromVersion8() async throws {
        let path = try journalFile(
            atVersion: 8,
            with: """
                INSERT INTO checkpoints (actor, seq, time, state) VALUES ('counter/a', 4, 11, x'0102'), ('counter/b', 2, 12, x'');
                INSERT INTO reminders (actor, name, due, payload)
                VALUES ('counter/a', 'tick', 30, x'07'), ('counter/b', 'tick', 20, x'08'), ('counter/a', 'alarm', 30, x'09');
                """)

        let journal = try await Journal.open(path: path, configuration: .init(shards: 1))
        #expect(
            try await journal.latestCheckpoint(for: counterA)
                == Checkpoint(actor: counterA, sequence: 4, time: 11, state: [1, 2]))
        #expect(try await journal.latestCheckpoint(for: counterB)?.state == [])
        // Due order: time, then actor, then name.
        let due = try await journal.dueReminders(at: 30)
        #expect(
            due.map { "\($0.actor)/\($0.name)/\($0.payload)" } == [
                "counter/b/tick/[8]", "counter/a/alarm/[9]", "counter/a/tick/[7]",
            ])
        #expect(try await journal.dueReminders(at: 30, after: due[1]).map(\.name) == ["tick"])
        // The keys still hold one row per actor (a later checkpoint replaces, an earlier one does not) and per
        // reminder name.
        try await journal.write(Checkpoint(actor: counterA, sequence: 3, time: 13, state: [5]))
        #expect(try await journal.latestCheckpoint(for: counterA)?.sequence == 4)
        try await journal.write(Checkpoint(actor: counterA, sequence: 6, time: 14, state: [6]))
        #expect(try await journal.latestCheckpoint(for: counterA)?.state == [6])
        try await journal.append(
            [], reminders: [.set(Reminder(actor: counterA, name: "tick", due: 40, payload: [10]))])
        #expect(try await journal.reminders(for: counterA).map { "\($0.name)@\($0.due)" } == ["alarm@30", "tick@40"])
        #expect(try await journal.statistics().checkpoints == 2)
        await journal.close()
        let check = try SQLiteConnection(path: path)
        #expect(try check.pragma("user_version") == Schema.current)
        for table in ["checkpoints", "reminders"] {
            let sql = try check.statement("SELECT sql FROM sqlite_schema WHERE name = '\(table)'")
            #expect(try sql.step() && !(sql.text(0) ?? "").contains("WITHOUT ROWID"))
        }
        let plan = try check.statement(
            "EXPLAIN QUERY PLAN SELECT actor FROM reminders WHERE due <= 1 ORDER BY due, actor, name")
        var steps: [String] = []
        while try plan.step() { steps.append(plan.text(3) ?? "") }
        #expect(steps.contains { $0.contains("reminders_by_due") } && !steps.contains { $0.contains("TEMP B-TREE") })
        // A rowid table's primary key would take NULL unless told not to (the old table refused it).
        #expect(throws: JournalError.self) {
            try check.execute("INSERT INTO checkpoints (actor, seq, time, state) VALUES (NULL, 1, 1, x'')")
        }
        check.close()
    }
}
