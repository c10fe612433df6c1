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
    /// `actor` names the row's actor: a parameter when all rows are one actor's, so that SQLite looks the
    /// checkpoint up once instead of once per row.
    static func unpruned(keepingHistory: Bool, actor: String = "log.actor") -> String {
        """
        (\(keepingHistory ? 1 : 0) OR idempotency_key IS NOT NULL
            OR seq > COALESCE((SELECT c.seq FROM checkpoints c WHERE c.actor = \(actor)), 0))
        """
    }

    /// Copies log rows into `entries`, leaving out what pruning would have removed. Rows already filed
    /// (before a crash) are ignored. `rows` selects them, binding `?1`, `?2` and `?3`.
    static func fileSQL(_ rows: String, keepingHistory: Bool, actor: String = "log.actor") -> String {
        """
        INSERT OR IGNORE INTO entries (\(logColumns))
        SELECT \(logColumns) FROM log
        WHERE \(rows) AND \(unpruned(keepingHistory: keepingHistory, actor: actor))
        """
    }

    /// Takes what a crash left in the log as unfiled (on open, before anything else runs). Nothing is
    /// written, so a journal on a full disk still opens and reads. Rows filed before the crash, and rows
    /// that pruning would have removed, stay out.
    func loadLeftovers(_ connection: SQLiteConnection, keepHistory: Bool) throws(JournalError) {
        let last = try connection.statement("SELECT COALESCE(MAX(id), 0) FROM log")
        let lastRow = try last.step() ? last.int64(0) : 0
        unfiled = UnfiledEntries(nextRow: lastRow + 1)
        guard lastRow > 0 else { return }
        let rows = try connection.statement(
            """
            SELECT id, actor, seq, kind, idempotency_key,
                32 + length(actor) + length(payload) + COALESCE(length(reply), 0) + COALESCE(length(effects), 0)
                    + COALESCE(length(idempotency_key), 0)
            FROM log
            WHERE \(Self.unpruned(keepingHistory: keepHistory))
                AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.actor = log.actor AND e.seq = log.seq)
            ORDER BY id
            """)
        var actors: Set<ActorID> = []
        while try rows.step() {
            guard let text = rows.text(1), let actor = try? ActorID(parsing: text) else {
                throw JournalError(
                    .corrupt, "log row \(rows.int64(0)) has actor id '\(rows.text(1) ?? "")', which does not parse",
                    path: connection.path)
            }
            actors.insert(actor)
            unfiled.add(
                row: rows.int64(0), actor: actor, sequence: UInt64(bitPattern: rows.int64(2)),
                messageKey: rows.int64(3) == Int64(JournalEntry.Kind.message.rawValue) ? rows.text(4) : nil,
                keyed: !rows.isNull(4), bytes: Int(rows.int64(5)))
        }
        for actor in actors {
            unfiled.noteSequence(try storedLastSequence(of: actor, connection), of: actor)
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
                let range = Self.fileSQL(
                    "id BETWEEN ?1 AND ?2 AND actor = ?3", keepingHistory: keepsHistory, actor: "?3")
                for actor in actors {
                    guard let rows = unfiled.backlogs[actor]?.entries, let first = rows.first?.id,
                        let last = rows.last?.id
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
                            try file.bind(1, row.id)
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
        return try storedLastSequence(of: actor, connection)
    }

    /// The highest sequence of `actor` in `entries` or its checkpoint.
    private func storedLastSequence(of actor: ActorID, _ connection: SQLiteConnection) throws(JournalError)
        -> UInt64
    {
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
    /// accepted before it in this group, and takes this one's if it is accepted; `starting` takes the actors
    /// whose first entry it holds (nothing committed or checkpointed before), which begin a lineage.
    func outOfOrder(
        _ item: Append, last: inout [ActorID: UInt64], starting: inout Set<ActorID>, _ connection: SQLiteConnection
    ) -> JournalError? {
        var accepted: [(actor: ActorID, sequence: UInt64)] = []
        var first: [ActorID] = []
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
                if previous == 0 { first.append(entry.actor) }
            }
            guard entry.sequence > previous else {
                return JournalError(
                    .sqlite, "\(entry.actor) entry \(entry.sequence) does not follow its entry \(previous)",
                    path: path, resultCode: SQLITE_CONSTRAINT | (6 << 8))  // SQLITE_CONSTRAINT_PRIMARYKEY
            }
            accepted.append((entry.actor, entry.sequence))
        }
        for (actor, sequence) in accepted { last[actor] = sequence }
        starting.formUnion(first)
        return nil
    }

    /// Which log rows hold unfiled entries that pruning would keep, for reading across actors without
    /// filing (writer thread only): a condition on `log`, and the first row that may hold one, for `?1`.
    func unfiledRows() -> (condition: String, first: Int64) {
        (
            """
            id >= ?1 AND \(Self.unpruned(keepingHistory: keepsHistory))
                AND NOT EXISTS (SELECT 1 FROM entries e WHERE e.actor = log.actor AND e.seq = log.seq)
            """,
            unfiled.watermark()
        )
    }

    /// The unfiled message row of `actor` with `key`, if any (writer thread only).
    func unfiledMessage(of actor: ActorID, key: String) -> Int64? {
        unfiled.backlogs[actor]?.keys[key]
    }
}
