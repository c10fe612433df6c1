internal import CSQLite
internal import Foundation
public import PlexCore

/// Settings for a node's journal.
public struct JournalConfiguration: Sendable {
    /// How hard SQLite flushes a commit.
    public enum Synchronous: String, Sendable {
        /// `synchronous=FULL`: a commit is on disk when `append` returns. The default.
        case full = "FULL"
        /// `synchronous=NORMAL`: in WAL mode, the last commits can be lost on power failure (not on a crash).
        case normal = "NORMAL"
    }

    /// Default: ``Synchronous/full``.
    public var synchronous: Synchronous
    /// Run SQLite's `quick_check` when opening, so damaged pages stop the node instead of being read later.
    /// Default: `true`.
    public var checkIntegrityOnOpen: Bool
    /// The largest each database file (each shard) may grow, in bytes (`PRAGMA max_page_count`); beyond it
    /// appends fail as on a full disk. `nil` (the default) leaves it to the disk.
    public var maximumBytes: Int?
    /// Keep every entry, also those a checkpoint made unnecessary for recovery, so `plex journal inspect
    /// --state-at` can rebuild any earlier state. Default: `false`: a checkpoint prunes the entries it
    /// covers, except those whose idempotency keys are still retained.
    public var keepHistory: Bool
    /// How many SQLite files (each with its own writer thread) a new journal spreads its actors over, by a
    /// stable hash of the actor id. A journal keeps the count it was created with (one for journals created
    /// before sharding). Default: 1. On 2 cores a node's own work (its event loops, a gateway) leaves no core for
    /// a second writer: one writer's larger group commits flush less often (durable asks over HTTP measured 19.9 k
    /// against 15.9 k requests/s; 256 in-process callers within noise, 78-128 k against 86-105 k calls/s over two
    /// sittings). More shards may pay where the journal alone is the bottleneck (256 bare appenders: 105-125 k
    /// entries/s with two against 102-105 k with one) or on more cores.
    public var shards: Int
    /// How many bytes of committed entries each shard keeps only in its commit-order log before it files
    /// the oldest backlogs by actor. A group commit then writes a few pages instead of one per actor in it,
    /// and filing writes an actor's pages once for its whole backlog. Larger: fewer pages written per entry;
    /// a larger log to file on the next open after a crash. Default: 4 MiB.
    public var unfiledBytes: Int

    /// Creates a configuration.
    public init(
        synchronous: Synchronous = .full, checkIntegrityOnOpen: Bool = true, maximumBytes: Int? = nil,
        keepHistory: Bool = false, shards: Int = 1, unfiledBytes: Int = 4 << 20
    ) {
        self.unfiledBytes = unfiledBytes
        self.shards = shards
        self.keepHistory = keepHistory
        self.synchronous = synchronous
        self.checkIntegrityOnOpen = checkIntegrityOnOpen
        self.maximumBytes = maximumBytes
    }
}

/// A node's durable journal: SQLite files in WAL mode (one per shard), one writer thread each, group commit.
///
/// Appends from every activation are queued; each shard's writer commits everything queued for it in one
/// transaction and completes each append once it is durable. An actor lives in one shard (a stable hash of
/// its id), so its appends and reads stay in order. Reads run on the writer threads, in order with writes.
public final class Journal: Sendable {
    /// The journal's first file; further shards sit beside it (`journal-1.sqlite`, …).
    public let path: String
    /// Whether checkpoints leave the entries they cover (``JournalConfiguration/keepHistory``).
    public let keepsHistory: Bool
    /// One writer per shard.
    let shards: [JournalWriter]
    /// The first shard's writer (it also holds the journal's settings).
    var writer: JournalWriter { shards[0] }

    private init(path: String, shards: [JournalWriter], keepsHistory: Bool) {
        self.path = path
        self.shards = shards
        self.keepsHistory = keepsHistory
    }

    /// The writer of the shard that holds `actor`.
    func writer(for actor: ActorID) -> JournalWriter {
        shards[shardIndex(of: actor)]
    }

    /// The shard that holds `actor`: a stable hash of its id, the same in every process and release.
    func shardIndex(of actor: ActorID) -> Int {
        shards.count == 1 ? 0 : Int(StableHash.hash(describing: actor) % UInt64(shards.count))
    }

    /// The file of shard `index` for a journal whose first file is `path`.
    static func shardPath(_ path: String, _ index: Int) -> String {
        guard index > 0 else { return path }
        let base = path.hasSuffix(".sqlite") ? String(path.dropLast(".sqlite".count)) : path
        return "\(base)-\(index).sqlite"
    }

    /// Opens (creating if needed) the journal at `path`, migrates its schema and checks its pages.
    /// - Throws: ``JournalError`` `open`, `corrupt`, `newerSchema` or `io`, naming the file; `open` also when a
    ///   shard file the journal was created with is missing.
    public static func open(path: String, configuration: JournalConfiguration = .init()) async throws -> Journal {
        guard (1...64).contains(configuration.shards) else {
            throw JournalError(.misuse, "shards must be 1...64, not \(configuration.shards)", path: path)
        }
        var opened: [JournalWriter] = []
        do {
            let first = JournalWriter(path: path)
            opened.append(first)
            try await first.open(configuration: configuration)
            let (recorded, hasData) = try await first.perform(filing: .none) { connection throws(JournalError) in
                (try Schema.recordedShards(connection), try Schema.hasData(connection))
            }
            // A journal from before sharding has data and no count: it is one shard.
            let count = recorded ?? (hasData ? 1 : configuration.shards)
            for index in 1..<max(1, count) {
                let shardPath = Self.shardPath(path, index)
                if recorded != nil && !FileManager.default.fileExists(atPath: shardPath) {
                    throw JournalError(
                        .open, "shard \(index) of \(count) is missing; its actors' journal would be lost",
                        path: shardPath)
                }
                let shard = JournalWriter(path: shardPath)
                opened.append(shard)
                try await shard.open(configuration: configuration)
            }
            // Recorded only once every shard file exists, so a crash in between cannot leave a count whose
            // files were never made.
            if recorded == nil {
                try await first.perform(filing: .none) { connection throws(JournalError) in
                    try Schema.recordShards(count, connection)
                }
            }
        } catch {
            for writer in opened { await writer.close() }
            throw error
        }
        return Journal(path: path, shards: opened, keepsHistory: configuration.keepHistory)
    }

    /// Appends `entries` and returns when they are durable (committed with the configured `synchronous`).
    ///
    /// - Throws: ``JournalError``; on error none of the entries committed together with these was kept.
    public func append(_ entries: [JournalEntry]) async throws {
        try await enqueue(entries).wait()
    }

    /// Appends `entries` and applies `reminders` in the same transaction; returns when both are durable.
    public func append(_ entries: [JournalEntry], reminders: [ReminderUpdate]) async throws {
        try await enqueue(entries, reminders: reminders).wait()
    }

    /// Queues `entries` and `reminders` for the next group commit without waiting; the returned write
    /// completes when they are durable (or failed). Appends commit in the order they were queued, and an
    /// actor's entries fail once one of its entries failed, until it recovers (``clearFailure(of:)``).
    /// Entries and reminders of one actor commit together; those of actors in different shards commit
    /// separately (and the write fails if any part does).
    public func enqueue(_ entries: [JournalEntry], reminders: [ReminderUpdate] = []) -> PendingWrite {
        // The usual case, one message of one actor: straight to its shard.
        if let actor = entries.first?.actor ?? reminders.first?.actor,
            entries.allSatisfy({ $0.actor == actor }), reminders.allSatisfy({ $0.actor == actor })
        {
            return writer(for: actor).enqueue(entries, reminders: reminders)
        }
        var parts: [Int: ([JournalEntry], [ReminderUpdate])] = [:]
        for entry in entries { parts[shardIndex(of: entry.actor), default: ([], [])].0.append(entry) }
        for update in reminders { parts[shardIndex(of: update.actor), default: ([], [])].1.append(update) }
        return PendingWrite.all(parts.map { shards[$0.key].enqueue($0.value.0, reminders: $0.value.1) })
    }

    /// Tells the journal that `actor` is rebuilding its state from what is durable: its appends, refused
    /// since one of them failed, are accepted again. Call before reading the actor's entries to recover.
    public func clearFailure(of actor: ActorID) async throws {
        try await writer(for: actor).clearFailure(of: actor)
    }

    /// Writes `checkpoint` in the next group commit, after everything queued before it, if `write` did not
    /// fail; its failure is ignored (the entries stay, so recovery only replays more).
    public func writeCheckpoint(_ checkpoint: Checkpoint, after write: PendingWrite, pruningKeysBefore: Int64?) {
        // `write` holds the actor's entries, so it went to the same shard, earlier.
        let prunes = pruningKeysBefore != nil && !keepsHistory ? (checkpoint.actor, checkpoint.sequence) : nil
        writer(for: checkpoint.actor).enqueueRider(after: write, prunes: prunes) { connection throws(JournalError) in
            try Self.insert(checkpoint, pruningKeysBefore: pruningKeysBefore, connection)
        }
    }

    /// The entries of `actor` after `sequence`, in order.
    public func entries(for actor: ActorID, after sequence: UInt64 = 0) async throws -> [JournalEntry] {
        let shard = writer(for: actor)
        return try await shard.perform(filing: .none) { connection throws(JournalError) in
            try Self.entries(
                for: actor, where: "seq > ?2", bindings: [Int64(bitPattern: sequence)],
                unfiled: shard.unfiled.backlogs[actor]?.rows ?? [], keepingHistory: shard.keepsHistory, connection)
        }
    }

    /// The entries of `actor` matching `condition` (which may use `?2`, `?3`, … for `bindings`), in order:
    /// the filed ones, then those of `unfiled` (its log rows, which are newer) that pruning would keep.
    static func entries(
        for actor: ActorID, where condition: String, bindings: [Int64], unfiled: [Int64] = [],
        keepingHistory: Bool = false, _ connection: SQLiteConnection
    ) throws(JournalError) -> [JournalEntry] {
        let columns = "seq, kind, time, call_origin, call_seq, idempotency_key, payload, reply, effects"
        let unpruned = JournalWriter.unpruned(keepingHistory: keepingHistory)
        var result: [JournalEntry] = []
        func read(_ sql: String, actor text: String?, row: Int64?) throws(JournalError) {
            let statement = try connection.statement(sql)
            if let text { try statement.bind(1, text) }
            if let row { try statement.bind(1, row) }
            for (index, value) in bindings.enumerated() { try statement.bind(Int32(index + 2), value) }
            while try statement.step() { result.append(try decodeEntry(of: actor, statement, connection)) }
        }
        try read(
            "SELECT \(columns) FROM entries WHERE actor = ?1 AND (\(condition)) ORDER BY seq", actor: actor.description,
            row: nil)
        for row in unfiled {
            try read(
                "SELECT \(columns) FROM log WHERE id = ?1 AND (\(condition)) AND \(unpruned)", actor: nil, row: row)
        }
        return result
    }

    /// The entry in the current row of `statement` (columns as ``entries(for:where:bindings:unfiled:_:)``
    /// selects them).
    private static func decodeEntry(of actor: ActorID, _ statement: Statement, _ connection: SQLiteConnection)
        throws(JournalError) -> JournalEntry
    {
        let sequence = UInt64(bitPattern: statement.int64(0))
        guard let kind = JournalEntry.Kind(rawValue: UInt8(clamping: statement.int64(1))) else {
            throw JournalError(
                .corrupt, "entry \(actor)#\(sequence) has unknown kind \(statement.int64(1))", path: connection.path)
        }
        let callID =
            statement.isNull(3)
            ? nil
            : CallID(origin: UInt64(bitPattern: statement.int64(3)), sequence: UInt64(bitPattern: statement.int64(4)))
        return JournalEntry(
            actor: actor, sequence: sequence, kind: kind, time: statement.int64(2), callID: callID,
            idempotencyKey: statement.text(5), payload: statement.blob(6),
            reply: statement.isNull(7) ? nil : statement.blob(7), effects: statement.isNull(8) ? nil : statement.blob(8)
        )
    }

    /// The latest message of `actor` recorded with `idempotencyKey` at or after `notBefore` (milliseconds
    /// since 1970): its sequence and its reply (`nil` if the handler threw). `nil` if there is none.
    public func message(for actor: ActorID, idempotencyKey: String, notBefore: Int64) async throws
        -> (sequence: UInt64, reply: [UInt8]?)?
    {
        let shard = writer(for: actor)
        return try await shard.perform(filing: .none) { connection throws(JournalError) in
            // Unfiled entries are the newest: look there first.
            if let row = shard.unfiledMessage(of: actor, key: idempotencyKey) {
                let statement = try connection.statement("SELECT seq, reply, time FROM log WHERE id = ?1")
                try statement.bind(1, row)
                if try statement.step(), statement.int64(2) >= notBefore {
                    return (UInt64(bitPattern: statement.int64(0)), statement.isNull(1) ? nil : statement.blob(1))
                }
            }
            let statement = try connection.statement(
                """
                SELECT seq, reply FROM entries
                WHERE actor = ?1 AND idempotency_key = ?2 AND kind = 1 AND time >= ?3
                ORDER BY seq DESC LIMIT 1
                """)
            try statement.bind(1, actor.description)
            try statement.bind(2, idempotencyKey)
            try statement.bind(3, notBefore)
            guard try statement.step() else { return nil }
            return (UInt64(bitPattern: statement.int64(0)), statement.isNull(1) ? nil : statement.blob(1))
        }
    }

    /// The highest sequence stored for `actor` (0 if none).
    public func lastSequence(for actor: ActorID) async throws -> UInt64 {
        let shard = writer(for: actor)
        return try await shard.perform(filing: .none) { connection throws(JournalError) in
            if let backlog = shard.unfiled.backlogs[actor] { return backlog.lastSequence }
            let statement = try connection.statement("SELECT MAX(seq) FROM entries WHERE actor = ?1")
            try statement.bind(1, actor.description)
            guard try statement.step(), !statement.isNull(0) else { return 0 }
            return UInt64(bitPattern: statement.int64(0))
        }
    }

    /// Stores `checkpoint`, replacing the actor's previous one; returns when it is durable.
    ///
    /// - Parameter pruningKeysBefore: If set, in the same transaction, deletes the actor's entries that the
    ///   checkpoint covers, except those with an idempotency key written at or after this time (milliseconds
    ///   since 1970), which answer retries.
    public func write(_ checkpoint: Checkpoint, pruningKeysBefore: Int64? = nil) async throws {
        try await writer(for: checkpoint.actor).perform(filing: .actor(checkpoint.actor)) {
            connection throws(JournalError) in
            try connection.transaction { () throws(JournalError) in
                try Self.insert(checkpoint, pruningKeysBefore: pruningKeysBefore, connection)
            }
        }
    }

    static func insert(_ checkpoint: Checkpoint, pruningKeysBefore: Int64?, _ connection: SQLiteConnection)
        throws(JournalError)
    {
        try insert(checkpoint, connection)
        guard let cutoff = pruningKeysBefore else { return }
        let prune = try connection.statement(
            """
            DELETE FROM entries WHERE actor = ?1 AND seq <= ?2
                AND seq <= (SELECT seq FROM checkpoints WHERE actor = ?1)
                AND (idempotency_key IS NULL OR time < ?3)
            """)
        try prune.bind(1, checkpoint.actor.description)
        try prune.bind(2, Int64(bitPattern: checkpoint.sequence))
        try prune.bind(3, cutoff)
        try prune.run()
    }

    /// Deletes entries covered by their actor's checkpoint whose idempotency keys are older than `cutoff`
    /// (milliseconds since 1970): what pruning at checkpoint time kept only for retries.
    /// - Returns: How many entries were deleted.
    @discardableResult
    public func pruneExpiredKeys(before cutoff: Int64) async throws -> Int {
        var total = 0
        for shard in shards { total += try await Self.pruneExpiredKeys(before: cutoff, in: shard) }
        return total
    }

    private static func pruneExpiredKeys(before cutoff: Int64, in shard: JournalWriter) async throws -> Int {
        try await shard.perform(filing: .all) { connection throws(JournalError) in
            try connection.transaction { () throws(JournalError) -> Int in
                let prune = try connection.statement(
                    """
                    DELETE FROM entries WHERE idempotency_key IS NOT NULL AND time < ?1
                        AND seq <= (SELECT c.seq FROM checkpoints c WHERE c.actor = entries.actor)
                    """)
                try prune.bind(1, cutoff)
                try prune.run()
                return connection.changes
            }
        }
    }

    static func insert(_ checkpoint: Checkpoint, _ connection: SQLiteConnection) throws(JournalError) {
        // Never replaces a later checkpoint with an earlier one (a checkpoint written late, say).
        let statement = try connection.statement(
            """
            INSERT INTO checkpoints (actor, seq, time, state) VALUES (?1, ?2, ?3, ?4)
            ON CONFLICT (actor) DO UPDATE SET seq = excluded.seq, time = excluded.time, state = excluded.state
            WHERE excluded.seq >= checkpoints.seq
            """)
        try statement.bind(1, checkpoint.actor.description)
        try statement.bind(2, Int64(bitPattern: checkpoint.sequence))
        try statement.bind(3, checkpoint.time)
        try statement.bind(4, checkpoint.state)
        try statement.run()
    }

    /// The latest checkpoint of `actor`, if any.
    public func latestCheckpoint(for actor: ActorID) async throws -> Checkpoint? {
        try await writer(for: actor).perform(filing: .none) { connection throws(JournalError) in
            try Self.checkpoint(for: actor, connection)
        }
    }

    static func checkpoint(for actor: ActorID, _ connection: SQLiteConnection) throws(JournalError) -> Checkpoint? {
        let statement = try connection.statement("SELECT seq, time, state FROM checkpoints WHERE actor = ?1")
        try statement.bind(1, actor.description)
        guard try statement.step() else { return nil }
        return Checkpoint(
            actor: actor, sequence: UInt64(bitPattern: statement.int64(0)), time: statement.int64(1),
            state: statement.blob(2))
    }

    /// The size of the journal's files (every shard's database and write-ahead log), in bytes. Read from the
    /// file system, without the writers: cheap enough for every metrics scrape.
    public var bytesOnDisk: Int { shards.reduce(0) { $0 + $1.bytesOnDisk } }

    /// Entry, actor and checkpoint counts, file sizes, and commit counters, over every shard.
    public func statistics() async throws -> JournalStatistics {
        var total = JournalStatistics(
            entries: 0, actors: 0, checkpoints: 0, bytes: 0, commits: 0, appended: 0, checkpointTimes: nil)
        for shard in shards {
            let part = try await Self.statistics(of: shard)
            total.entries += part.entries
            total.actors += part.actors  // an actor lives in one shard
            total.checkpoints += part.checkpoints
            total.bytes += part.bytes
            total.commits += part.commits
            total.appended += part.appended
            total.divergedCopies += part.divergedCopies
            if let times = part.checkpointTimes {
                total.checkpointTimes =
                    total.checkpointTimes.map {
                        min($0.lowerBound, times.lowerBound)...max($0.upperBound, times.upperBound)
                    } ?? times
            }
        }
        return total
    }

    private static func statistics(of shard: JournalWriter) async throws -> JournalStatistics {
        let (commits, appended) = shard.counters
        // Counts unfiled entries where they are, so that it writes nothing (and works on a full disk).
        return try await shard.perform(filing: .none) { connection throws(JournalError) in
            let unfiled = shard.unfiledRows()
            func count(_ sql: String) throws(JournalError) -> Int {
                let statement = try connection.statement(sql)
                if sql.contains("?1") { try statement.bind(1, unfiled.first) }
                return try statement.step() ? Int(statement.int64(0)) : 0
            }
            let entries =
                try count("SELECT COUNT(*) FROM entries")
                + count("SELECT COUNT(*) FROM log WHERE \(unfiled.condition)")
            let actors = try count(
                """
                SELECT COUNT(*) FROM (SELECT actor FROM entries UNION SELECT actor FROM checkpoints
                    UNION SELECT actor FROM log WHERE \(unfiled.condition))
                """)
            let checkpoints = try count("SELECT COUNT(*) FROM checkpoints")
            let times = try connection.statement("SELECT MIN(time), MAX(time) FROM checkpoints")
            let checkpointTimes: ClosedRange<Int64>? =
                try times.step() && !times.isNull(0) ? times.int64(0)...times.int64(1) : nil
            let bytes = shard.bytesOnDisk
            return JournalStatistics(
                entries: entries, actors: actors, checkpoints: checkpoints, bytes: bytes, commits: commits,
                appended: appended, checkpointTimes: checkpointTimes, divergedCopies: try divergedCount(connection))
        }
    }

    /// Copies the write-ahead logs into the database files and truncates them (`wal_checkpoint(TRUNCATE)`).
    public func flushWriteAheadLog() async throws {
        for shard in shards {
            // Files every entry too, so the main files hold everything.
            try await shard.perform(filing: .all) { connection throws(JournalError) in
                try connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            }
        }
    }

    /// Finishes queued work and closes the files.
    public func close() async {
        for shard in shards { await shard.close() }
    }

    /// Stops the journal as `kill -9` would stop the process, for tests that simulate a crash in process:
    /// commits under way finish; queued appends and reads are dropped (they fail with `closed`); nothing
    /// unfiled is filed; the files close without checkpointing their write-ahead logs. The next open finds
    /// the files as a crash leaves them.
    package func abandon() async {
        // All at once, as a process dies: no shard commits on while another stopped.
        await withTaskGroup(of: Void.self) { group in
            for shard in shards { group.addTask { await shard.abandon() } }
        }
    }
}
