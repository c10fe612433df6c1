internal import CSQLite
internal import Foundation
internal import PlexCore
internal import Synchronization

/// The journal's one thread: owns the SQLite connection, commits queued appends in groups, runs reads in
/// order with them. SQLite calls block, so they stay off Swift's cooperative pool.
final class JournalWriter: @unchecked Sendable {
    /// One caller's entries and reminder changes, committed together, and who waits for them.
    struct Append {
        var entries: [JournalEntry]
        var reminders: [ReminderUpdate]
        /// A write that rides along with the group (a checkpoint), nobody waiting for it.
        var rider: Rider?
        var done: PendingWrite
    }

    /// A write committed in the next group's transaction, inside a savepoint so that its failure fails
    /// nothing else, and only if the write it follows did not fail.
    struct Rider {
        /// The write it depends on, queued earlier on this writer (so it committed before or commits with it).
        var after: PendingWrite
        var body: @Sendable (SQLiteConnection) throws(JournalError) -> Void
        /// The actor and sequence through which `body`, once committed, prunes the actor's entries (those
        /// without an idempotency key), so that its unfiled ones can be dropped.
        var prunes: (actor: ActorID, through: UInt64)?
    }

    // Everything below is guarded by `condition`, except `connection`, which only the writer thread touches.
    private let condition = NSCondition()
    private var appends: [Append] = []
    private var jobs: [() -> Void] = []
    private var closing = false
    private var closed = false
    private var commits = 0
    private var appended = 0
    private var runningJob = false
    private var connection: SQLiteConnection?
    /// Actors with an entry that failed to commit (writer thread only). Their later entries were produced on
    /// a state that included it, so they fail too, until the actor recovers from what is durable
    /// (``clearFailure(of:)``, which runs after every append queued before it).
    private var failed: Set<ActorID> = []
    /// Committed entries still in the log only (writer thread only).
    var unfiled = UnfiledEntries()
    // Set when the database opens (writer thread only).
    private(set) var unfiledLimits = UnfiledEntries.Limits(bytes: 0, actorBytes: 0, span: 0)
    private(set) var synchronous = JournalConfiguration.Synchronous.full
    private(set) var keepsHistory = false
    let path: String
    private let metrics = JournalMetrics()
    /// How many transfers from other nodes this shard stored (see ``ActorRecovery/adoptions``).
    private let adoptionCount = Atomic<UInt64>(0)

    /// How many transfers from other nodes this shard has stored so far.
    var adoptions: UInt64 { adoptionCount.load(ordering: .acquiring) }

    /// Counts a stored transfer (writer thread, after its transaction committed).
    func noteAdoption() {
        adoptionCount.wrappingAdd(1, ordering: .releasing)
    }

    /// The size of this shard's database and write-ahead log files, in bytes (from the file system).
    var bytesOnDisk: Int {
        [path, path + "-wal"].reduce(0) { total, file in
            total + ((try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0)
        }
    }

    init(path: String) {
        self.path = path
        let thread = Thread { [self] in run() }
        thread.name = "plex-journal"
        thread.start()
    }

    /// Appends waiting for the next commit (for tests).
    var queuedAppends: Int {
        condition.lock()
        defer { condition.unlock() }
        return appends.count
    }

    /// Whether the writer thread is inside a job right now (for tests).
    var isRunningJob: Bool {
        condition.lock()
        defer { condition.unlock() }
        return runningJob
    }

    var counters: (commits: Int, appended: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (commits, appended)
    }

    /// Opens the database on the writer thread.
    func open(configuration: JournalConfiguration) async throws {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<Void, any Error>) in
            condition.lock()
            jobs.append { [self] in
                do {
                    try self.openOnWriterThread(configuration: configuration)
                    done.resume()
                } catch {
                    done.resume(throwing: error)
                }
            }
            condition.signal()
            condition.unlock()
        }
    }

    private func openOnWriterThread(configuration: JournalConfiguration) throws(JournalError) {
        let connection = try SQLiteConnection(path: path)
        do {
            // One process writes a journal (the node's data directory lock sees to that): holding the file lock
            // from the first transaction on, and keeping the write-ahead log's index in the process's memory,
            // saves five `fcntl` calls and the shared-memory index's locking on every commit. Set before the
            // first read, so the index is never put in a `-shm` file.
            try connection.execute("PRAGMA locking_mode = EXCLUSIVE")
            // Before the first read: a file another process still holds (a `plex journal` closing) is waited for.
            try connection.execute("PRAGMA busy_timeout = 5000")
            // A file that is not a database fails on its first read, which is the journal-mode pragma.
            try connection.execute("PRAGMA journal_mode = WAL")
            try connection.execute("PRAGMA synchronous = \(configuration.synchronous.rawValue)")
            if configuration.checkIntegrityOnOpen { try connection.checkIntegrity() }
            try Schema.migrate(connection)
            try loadLeftovers(connection, keepHistory: configuration.keepHistory)
            if let maximumBytes = configuration.maximumBytes {
                let pageSize = max(1, try connection.pragma("page_size"))
                try connection.execute("PRAGMA max_page_count = \(max(1, Int64(maximumBytes) / pageSize))")
            }
        } catch {
            connection.close()
            throw error
        }
        self.connection = connection
        let bytes = max(0, configuration.unfiledBytes)
        unfiledLimits = UnfiledEntries.Limits(
            bytes: bytes, actorBytes: min(bytes, 256 << 10), span: Int64(max(64, bytes / 64)))
        synchronous = configuration.synchronous
        keepsHistory = configuration.keepHistory
    }

    /// Queues entries for the next group commit and waits until it is durable.
    func append(_ entries: [JournalEntry], reminders: [ReminderUpdate] = []) async throws {
        try await enqueue(entries, reminders: reminders).wait()
    }

    /// Queues entries for the next group commit; the returned write completes when it is durable. Appends
    /// commit in the order they were queued.
    func enqueue(_ entries: [JournalEntry], reminders: [ReminderUpdate] = []) -> PendingWrite {
        guard !entries.isEmpty || !reminders.isEmpty else { return .completed(.success(())) }
        let done = PendingWrite()
        condition.lock()
        if closing {
            condition.unlock()
            done.complete(.failure(JournalError(.closed, "journal is closed", path: path)))
            return done
        }
        appends.append(Append(entries: entries, reminders: reminders, rider: nil, done: done))
        condition.signal()
        condition.unlock()
        return done
    }

    /// Writes `body` in the next group commit, after what is queued now, if `after` (queued earlier on this
    /// writer) did not fail. Nobody waits for it; its error is dropped and undoes only its own changes.
    ///
    /// Checkpoints take this way: actors tend to reach their checkpoint intervals together, and each one
    /// committed on its own would cost a flush while appends wait.
    func enqueueRider(
        after: PendingWrite, prunes: (actor: ActorID, through: UInt64)? = nil,
        _ body: @escaping @Sendable (SQLiteConnection) throws(JournalError) -> Void
    ) {
        condition.lock()
        defer { condition.unlock() }
        guard !closing else { return }
        let rider = Rider(after: after, body: body, prunes: prunes)
        appends.append(Append(entries: [], reminders: [], rider: rider, done: PendingWrite()))
        condition.signal()
    }

    /// Runs `body` on the writer thread with the connection, once the entries `filing` names are filed.
    /// Every job says what it needs filed: a read that reads unfiled rows where they are needs nothing.
    func perform<T: Sendable>(
        filing: Filing, _ body: @escaping @Sendable (SQLiteConnection) throws(JournalError) -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (done: CheckedContinuation<T, any Error>) in
            condition.lock()
            if closing {
                condition.unlock()
                done.resume(throwing: JournalError(.closed, "journal is closed", path: path))
                return
            }
            jobs.append { [self] in
                guard let connection = self.connection else {
                    return done.resume(throwing: JournalError(.closed, "journal is not open", path: self.path))
                }
                do {
                    try self.file(filing, connection)
                    done.resume(returning: try body(connection))
                } catch {
                    done.resume(throwing: error)
                }
            }
            condition.signal()
            condition.unlock()
        }
    }

    func close() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            condition.lock()
            closing = true
            jobs.append { [self] in
                // Leaves nothing for the next open to load, if it can.
                if let connection = self.connection { try? self.file(.all, connection) }
                self.connection?.close()
                self.connection = nil
                done.resume()
            }
            condition.signal()
            condition.unlock()
        }
    }

    /// Stops the writer as `kill -9` would stop the process: a commit under way finishes, appends and jobs
    /// still queued are dropped (their callers get `closed`, where a dead process would never answer),
    /// nothing is filed, and the connection closes without checkpointing the write-ahead log.
    func abandon() async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            condition.lock()
            guard !closed else {  // the writer thread is gone
                condition.unlock()
                return done.resume()
            }
            closing = true
            let dropped = appends
            appends = []
            // First: the jobs queued before it find no connection and fail.
            jobs.insert(
                { [self] in
                    self.connection?.abandon()
                    self.connection = nil
                    done.resume()
                }, at: 0)
            condition.signal()
            condition.unlock()
            for item in dropped {
                item.done.complete(
                    .failure(JournalError(.closed, "journal was abandoned (a simulated crash)", path: path)))
            }
        }
    }

    private func setRunningJob(_ value: Bool) {
        condition.lock()
        runningJob = value
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while appends.isEmpty && jobs.isEmpty && !closed {
                condition.wait()
            }
            if closed && appends.isEmpty && jobs.isEmpty {
                condition.unlock()
                return
            }
            // Appends first: they were queued before any job that follows them in this round only if the
            // job came later, and jobs never depend on unqueued appends.
            let batch = appends
            let work = jobs
            appends = []
            jobs = []
            condition.unlock()

            if !batch.isEmpty {
                commit(batch)
                if let connection { fileDue(connection) }
            }
            for job in work {
                setRunningJob(true)
                job()
                setRunningJob(false)
            }

            condition.lock()
            if closing && appends.isEmpty && jobs.isEmpty && connection == nil { closed = true }
            condition.unlock()
        }
    }

    private func commit(_ batch: [Append]) {
        guard let connection else {
            for item in batch { item.done.complete(.failure(JournalError(.closed, "journal is not open", path: path))) }
            return
        }
        var ready: [Append] = []
        var last: [ActorID: UInt64] = [:]
        var starting: Set<ActorID> = []
        for item in batch {
            if let error = followsFailure(item) {
                item.done.complete(.failure(error))
            } else if case .failure(let error)? = item.rider?.after.result {
                item.done.complete(.failure(error))
            } else if let error = outOfOrder(item, last: &last, starting: &starting, connection) {
                for entry in item.entries { failed.insert(entry.actor) }
                item.done.complete(.failure(error))
            } else {
                ready.append(item)
            }
        }
        guard !ready.isEmpty else { return }
        do throws(JournalError) {
            let started = ContinuousClock.now
            let (rows, prunes) = try insert(ready, starting: starting, into: connection)
            metrics.committed(
                entries: ready.reduce(0) { $0 + $1.entries.count }, elapsed: ContinuousClock.now - started)
            for (row, entry) in rows {
                unfiled.add(
                    row: row, actor: entry.actor, sequence: entry.sequence,
                    messageKey: entry.kind == .message ? entry.idempotencyKey : nil,
                    keyed: entry.idempotencyKey != nil, bytes: entry.approximateSize,
                    actorLimit: unfiledLimits.actorBytes)
            }
            for (actor, sequence) in prunes { unfiled.prune(actor, through: sequence) }
            condition.lock()
            commits += 1
            appended += ready.reduce(0) { $0 + $1.entries.count }
            condition.unlock()
            for item in ready { item.done.complete(.success(())) }
        } catch  where ready.count > 1 && error.code == .sqlite {
            // One caller's bad entry (a duplicate sequence, say) must not fail the others committed with it:
            // retry each on its own. I/O errors and a full disk fail the whole group, as they would alone.
            for item in ready { commit([item]) }
        } catch {
            for item in ready {
                for entry in item.entries { failed.insert(entry.actor) }
                item.done.complete(.failure(error))
            }
        }
    }

    /// The error for an append whose actor had an earlier entry fail since it last recovered.
    private func followsFailure(_ item: Append) -> JournalError? {
        guard !failed.isEmpty, let entry = item.entries.first(where: { failed.contains($0.actor) }) else {
            return nil
        }
        return JournalError(
            .sqlite,
            "\(entry.actor) entry \(entry.sequence) was produced after an earlier entry of the actor failed to commit",
            path: path)
    }

    /// Lets `actor` append again: it recovered from the journal. Runs after every append queued before it.
    func clearFailure(of actor: ActorID) async throws {
        try await perform(filing: .none) { _ throws(JournalError) in self.forgetFailure(of: actor) }
    }

    /// ``clearFailure(of:)`` inside a job (writer thread only).
    func forgetFailure(of actor: ActorID) {
        failed.remove(actor)
    }

    /// Appends the batch's entries to the log and runs its riders, in one transaction, which also gives the
    /// `starting` actors (their first entries are in it) a new lineage; returns each entry with its row, and
    /// the prunes of the riders that succeeded.
    private func insert(_ batch: [Append], starting: Set<ActorID>, into connection: SQLiteConnection)
        throws(JournalError) -> (rows: [(Int64, JournalEntry)], prunes: [(ActorID, UInt64)])
    {
        try connection.transaction { () throws(JournalError) in
            for actor in starting {
                let lineage = try connection.statement(
                    "INSERT INTO lineages (actor, id) VALUES (?1, ?2) ON CONFLICT DO NOTHING")
                try lineage.bind(1, actor.description)
                try lineage.bind(2, LineageID.random().bytes)
                try lineage.run()
            }
            var rows: [(Int64, JournalEntry)] = []
            var prunes: [(ActorID, UInt64)] = []
            for append in batch {
                for entry in append.entries {
                    let row = unfiled.claimRow()
                    try Self.insert(entry, into: connection, row: row)
                    rows.append((row, entry))
                }
                for update in append.reminders { try Self.apply(update, to: connection) }
                if let rider = append.rider,
                    try connection.savepoint({ () throws(JournalError) in try rider.body(connection) }),
                    let prune = rider.prunes
                {
                    prunes.append(prune)
                }
            }
            return (rows, prunes)
        }
    }

    /// Sets or cancels one reminder; the caller holds a transaction.
    static func apply(_ update: ReminderUpdate, to connection: SQLiteConnection) throws(JournalError) {
        switch update {
        case .set(let reminder):
            let statement = try connection.statement(
                "INSERT OR REPLACE INTO reminders (actor, name, due, payload) VALUES (?1, ?2, ?3, ?4)")
            try statement.bind(1, reminder.actor.description)
            try statement.bind(2, reminder.name)
            try statement.bind(3, reminder.due)
            try statement.bind(4, reminder.payload)
            try statement.run()
        case .cancel(let actor, let name):
            let statement = try connection.statement("DELETE FROM reminders WHERE actor = ?1 AND name = ?2")
            try statement.bind(1, actor.description)
            try statement.bind(2, name)
            try statement.run()
        }
    }

    /// Inserts one entry into `entries`, or into the log as `row`; the caller holds a transaction.
    static func insert(_ entry: JournalEntry, into connection: SQLiteConnection, row: Int64? = nil)
        throws(JournalError)
    {
        let insert = try connection.statement(
            row == nil
                ? "INSERT INTO entries (\(logColumns)) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"
                : "INSERT INTO log (\(logColumns), id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)")
        if let row { try insert.bind(11, row) }
        try insert.bind(1, entry.actor.description)
        try insert.bind(2, Int64(bitPattern: entry.sequence))
        try insert.bind(3, Int64(entry.kind.rawValue))
        try insert.bind(4, entry.time)
        if let callID = entry.callID {
            try insert.bind(5, Int64(bitPattern: callID.origin))
            try insert.bind(6, Int64(bitPattern: callID.sequence))
        }
        try insert.bind(7, entry.idempotencyKey)
        try insert.bind(8, entry.payload)
        if let reply = entry.reply { try insert.bind(9, reply) }
        if let effects = entry.effects { try insert.bind(10, effects) }
        try insert.run()
    }
}
