internal import CSQLite
internal import PlexCore

/// Which unfiled entries a job needs in `entries` before it runs (see ``UnfiledEntries``).
enum Filing: Sendable {
    /// None: the job reads no entries (reminders, ownership, checkpoints only).
    case none
    /// The actor's: the job reads or changes only this actor's entries.
    case actor(ActorID)
    /// Every actor's: the job reads entries across actors.
    case all
}

extension JournalWriter {
    static let logColumns =
        "actor, seq, kind, time, call_origin, call_seq, idempotency_key, payload, reply, effects"

    /// Whether a log row is still wanted: pruning would not have removed it, as it is not covered by its
    /// actor's checkpoint, carries an idempotency key, or history is kept.
    static func unpruned(keepingHistory: Bool) -> String {
        """
        (\(keepingHistory ? 1 : 0) OR idempotency_key IS NOT NULL
            OR seq > COALESCE((SELECT c.seq FROM checkpoints c WHERE c.actor = log.actor), 0))
        """
    }

    /// Copies log rows into `entries`, leaving out what pruning would have removed. Rows already filed
    /// (before a crash) are ignored. `rows` selects them, binding `?1`, `?2` and `?3`.
    static func fileSQL(_ rows: String, keepingHistory: Bool) -> String {
        """
        INSERT OR IGNORE INTO entries (\(logColumns))
        SELECT \(logColumns) FROM log
        WHERE \(rows) AND \(unpruned(keepingHistory: keepingHistory))
        """
    }

    /// Files whatever a crash left in the log (on open, before anything else runs).
    func fileLeftovers(_ connection: SQLiteConnection, keepHistory: Bool) throws(JournalError) {
        let count = try connection.statement("SELECT COUNT(*), COALESCE(MAX(id), 0) FROM log")
        guard try count.step(), count.int64(0) > 0 else { return }
        try connection.transaction { () throws(JournalError) in
            let file = try connection.statement(Self.fileSQL("id >= ?1", keepingHistory: keepHistory))
            try file.bind(1, Int64(0))
            try file.run()
            try connection.execute("DELETE FROM log")
        }
    }

    /// Files the entries `filing` names (writer thread only).
    func file(_ filing: Filing, _ connection: SQLiteConnection) throws(JournalError) {
        switch filing {
        case .none: return
        case .actor(let actor):
            guard unfiled.backlogs[actor] != nil else { return }
            try file([actor], connection)
        case .all:
            guard unfiled.count > 0 else { return }
            try file(Array(unfiled.backlogs.keys), connection)
        }
    }

    /// Files the backlogs that are due (writer thread only, after a group commit): see
    /// ``UnfiledEntries/due(_:)``. A failure leaves them unfiled, for a later round or a read.
    func fileDue(_ connection: SQLiteConnection) {
        let actors = unfiled.due(unfiledLimits)
        guard !actors.isEmpty else { return }
        try? file(actors, connection)
    }

    /// Files every unfiled entry of `actors` in one transaction, and deletes the log rows below the
    /// watermark (filed in earlier rounds).
    ///
    /// The transaction need not be flushed: the log keeps the entries until a later transaction deletes
    /// them, and the next group commit's flush covers this one (WAL frames are written in order). So it
    /// runs with `synchronous=NORMAL`, costing no flush.
    private func file(_ actors: [ActorID], _ connection: SQLiteConnection) throws(JournalError) {
        let watermark = unfiled.watermark()
        try withoutFlushing(connection) { () throws(JournalError) in
            try connection.transaction { () throws(JournalError) in
                let delete = try connection.statement("DELETE FROM log WHERE id < ?1")
                try delete.bind(1, watermark)
                try delete.run()
                let one = Self.fileSQL("id = ?1", keepingHistory: keepsHistory)
                let range = Self.fileSQL("id BETWEEN ?1 AND ?2 AND actor = ?3", keepingHistory: keepsHistory)
                for actor in actors {
                    guard let rows = unfiled.backlogs[actor]?.rows, let first = rows.first, let last = rows.last
                    else { continue }
                    if last - first < 4 * Int64(rows.count) {
                        // Mostly this actor's rows (a busy actor): one scan of the range.
                        let file = try connection.statement(range)
                        try file.bind(1, first)
                        try file.bind(2, last)
                        try file.bind(3, actor.description)
                        try file.run()
                    } else {
                        for row in rows {
                            let file = try connection.statement(one)  // reset for the next row
                            try file.bind(1, row)
                            try file.run()
                        }
                    }
                }
            }
        }
        for actor in actors { _ = unfiled.remove(actor) }
    }

    /// Runs `body` with `synchronous=NORMAL`, restoring `FULL` after it if that is the configured level.
    private func withoutFlushing(_ connection: SQLiteConnection, _ body: () throws(JournalError) -> Void)
        throws(JournalError)
    {
        guard synchronous == .full else { return try body() }
        try connection.execute("PRAGMA synchronous = NORMAL")
        do {
            try body()
        } catch {
            try connection.execute("PRAGMA synchronous = FULL")
            throw error
        }
        try connection.execute("PRAGMA synchronous = FULL")
    }

    /// The highest sequence `actor` has committed, filed or not, or covered by its checkpoint (writer thread).
    func lastSequence(of actor: ActorID, _ connection: SQLiteConnection) throws(JournalError) -> UInt64 {
        if let backlog = unfiled.backlogs[actor] { return backlog.lastSequence }
        let statement = try connection.statement(
            """
            SELECT MAX(COALESCE((SELECT MAX(seq) FROM entries WHERE actor = ?1), 0),
                COALESCE((SELECT seq FROM checkpoints WHERE actor = ?1), 0))
            """)
        try statement.bind(1, actor.description)
        guard try statement.step() else { return 0 }
        return UInt64(bitPattern: statement.int64(0))
    }

    /// The error for an append whose sequences do not follow what its actor committed (a duplicate, say),
    /// as the `entries` primary key would have reported it. `last` holds the sequences of the appends
    /// accepted before it in this group, and takes this one's if it is accepted.
    func outOfOrder(_ item: Append, last: inout [ActorID: UInt64], _ connection: SQLiteConnection) -> JournalError? {
        var accepted: [(actor: ActorID, sequence: UInt64)] = []
        for entry in item.entries {
            let previous: UInt64
            if let known = accepted.last(where: { $0.actor == entry.actor })?.sequence ?? last[entry.actor] {
                previous = known
            } else {
                do {
                    previous = try lastSequence(of: entry.actor, connection)
                } catch {
                    return error
                }
            }
            guard entry.sequence > previous else {
                return JournalError(
                    .sqlite, "\(entry.actor) entry \(entry.sequence) does not follow its entry \(previous)",
                    path: path, resultCode: SQLITE_CONSTRAINT | (6 << 8))  // SQLITE_CONSTRAINT_PRIMARYKEY
            }
            accepted.append((entry.actor, entry.sequence))
        }
        for (actor, sequence) in accepted { last[actor] = sequence }
        return nil
    }

    /// The unfiled message row of `actor` with `key`, if any (writer thread only).
    func unfiledMessage(of actor: ActorID, key: String) -> Int64? {
        unfiled.backlogs[actor]?.keys[key]
    }
}
