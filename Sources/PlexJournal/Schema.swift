/// The journal's schema and its migrations. `PRAGMA user_version` holds the version.
enum Schema {
    /// The version this build writes and reads.
    static let current: Int64 = 9

    /// Each migration takes the schema from version `index` to `index + 1`.
    static let migrations: [String] = [
        """
        CREATE TABLE entries (
            actor TEXT NOT NULL,
            seq INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            time INTEGER NOT NULL,
            call_origin INTEGER,
            call_seq INTEGER,
            idempotency_key TEXT,
            payload BLOB NOT NULL,
            reply BLOB,
            PRIMARY KEY (actor, seq)
        ) WITHOUT ROWID;
        CREATE INDEX entries_by_idempotency_key ON entries (actor, idempotency_key)
            WHERE idempotency_key IS NOT NULL;
        CREATE TABLE checkpoints (
            actor TEXT PRIMARY KEY,
            seq INTEGER NOT NULL,
            time INTEGER NOT NULL,
            state BLOB NOT NULL
        ) WITHOUT ROWID;
        """,
        // 1 → 2: the results of a message's side effects (`context.run`), recorded with it.
        "ALTER TABLE entries ADD COLUMN effects BLOB;",
        // 2 → 3: who holds an actor after handoffs. `epoch` grows with every transfer; `moved_to` names the
        // node this one handed the actor to (a tombstone: the local copy must not be activated).
        """
        CREATE TABLE ownership (
            actor TEXT PRIMARY KEY,
            epoch INTEGER NOT NULL,
            moved_to TEXT
        ) WITHOUT ROWID;
        """,
        // 3 → 4: durable reminders; a row lives until its delivery is journaled (or it is cancelled).
        """
        CREATE TABLE reminders (
            actor TEXT NOT NULL,
            name TEXT NOT NULL,
            due INTEGER NOT NULL,
            payload BLOB NOT NULL,
            PRIMARY KEY (actor, name)
        ) WITHOUT ROWID;
        CREATE INDEX reminders_by_due ON reminders (due);
        """,
        // 4 → 5: journal-wide settings (in the first shard): the number of shards.
        "CREATE TABLE settings (key TEXT PRIMARY KEY, value INTEGER NOT NULL) WITHOUT ROWID;",
        // 5 → 6: group commits append here, in commit order; entries are filed by actor later (see
        // `UnfiledEntries`).
        """
        CREATE TABLE log (
            id INTEGER PRIMARY KEY,
            actor TEXT NOT NULL,
            seq INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            time INTEGER NOT NULL,
            call_origin INTEGER,
            call_seq INTEGER,
            idempotency_key TEXT,
            payload BLOB NOT NULL,
            reply BLOB,
            effects BLOB
        );
        """,
        // 6 → 7: each durable actor's lineage (its history's id; the epoch is in `ownership` and the last
        // sequence in `entries`/`checkpoints`), created with its first entry, and the copies kept aside
        // because they did not extend the history held here (`Journal.adopt`). A journal from before
        // lineages cannot tell whether two nodes' copies of an actor share a history: every actor it holds
        // (entries, a checkpoint, or entries still in the log) gets the legacy lineage, all zeros, the same
        // on every node, so copies migrated on different nodes are compared by epoch and sequence as before,
        // while any history started after the migration has a random lineage of its own.
        """
        CREATE TABLE lineages (
            actor TEXT PRIMARY KEY,
            id BLOB NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO lineages (actor, id)
            SELECT actor, zeroblob(16) FROM (
                SELECT actor FROM entries UNION SELECT actor FROM checkpoints UNION SELECT actor FROM log);
        CREATE TABLE diverged (
            id INTEGER PRIMARY KEY,
            actor TEXT NOT NULL,
            reason INTEGER NOT NULL,
            lineage BLOB NOT NULL,
            epoch INTEGER NOT NULL,
            from_node TEXT NOT NULL,
            first_seq INTEGER NOT NULL,
            last_seq INTEGER NOT NULL,
            time INTEGER NOT NULL,
            transfer BLOB NOT NULL,
            UNIQUE (actor, reason, lineage, epoch, from_node, first_seq, last_seq)
        );
        """,
        // 7 → 8: `entries` keeps its rows by rowid, with `(actor, seq)` as a unique index. Without a rowid, each
        // row (a request, its reply and its effects: hundreds of bytes) sat in the key tree itself, and filing
        // finished actors' entries at scattered keys moved those cells on every page split: over a long run
        // of short-lived workflows the journal's filing grew to a fifth of the node's CPU (a 5 s run: 8.6 k
        // workflows/s with p99 138 ms, 10.3 k and 83 ms with this table).
        """
        CREATE TABLE entries_by_rowid (
            actor TEXT NOT NULL,
            seq INTEGER NOT NULL,
            kind INTEGER NOT NULL,
            time INTEGER NOT NULL,
            call_origin INTEGER,
            call_seq INTEGER,
            idempotency_key TEXT,
            payload BLOB NOT NULL,
            reply BLOB,
            effects BLOB,
            PRIMARY KEY (actor, seq)
        );
        INSERT INTO entries_by_rowid
            (actor, seq, kind, time, call_origin, call_seq, idempotency_key, payload, reply, effects)
            SELECT actor, seq, kind, time, call_origin, call_seq, idempotency_key, payload, reply, effects
            FROM entries ORDER BY actor, seq;
        DROP TABLE entries;
        ALTER TABLE entries_by_rowid RENAME TO entries;
        CREATE INDEX entries_by_idempotency_key ON entries (actor, idempotency_key)
            WHERE idempotency_key IS NOT NULL;
        """,
        // 8 → 9: `checkpoints` and `reminders` keep their rows by rowid too, with their keys as unique indexes.
        // In a table without a rowid a row is its key's cell, and a key compared during a search is read
        // whole, overflow pages and all: a workflow index shard's checkpoint of 570 KB (6,000 summaries) made
        // every checkpoint lookup in its file (two for each new actor) read 140 pages; after 100,000
        // workflows those lookups took a fifth of the node's CPU. A reminder's payload is the user's, so the
        // same holds for it.
        """
        CREATE TABLE checkpoints_by_rowid (
            actor TEXT NOT NULL PRIMARY KEY,
            seq INTEGER NOT NULL,
            time INTEGER NOT NULL,
            state BLOB NOT NULL
        );
        INSERT INTO checkpoints_by_rowid (actor, seq, time, state)
            SELECT actor, seq, time, state FROM checkpoints ORDER BY actor;
        DROP TABLE checkpoints;
        ALTER TABLE checkpoints_by_rowid RENAME TO checkpoints;
        CREATE TABLE reminders_by_rowid (
            actor TEXT NOT NULL,
            name TEXT NOT NULL,
            due INTEGER NOT NULL,
            payload BLOB NOT NULL,
            PRIMARY KEY (actor, name)
        );
        INSERT INTO reminders_by_rowid (actor, name, due, payload)
            SELECT actor, name, due, payload FROM reminders ORDER BY actor, name;
        DROP TABLE reminders;
        ALTER TABLE reminders_by_rowid RENAME TO reminders;
        CREATE INDEX reminders_by_due ON reminders (due, actor, name);
        """,
    ]

    /// Brings the database to ``current``, in one transaction per step.
    /// - Throws: ``JournalError`` `newerSchema` when the file is newer than this build.
    static func migrate(_ connection: SQLiteConnection) throws(JournalError) {
        let version = try connection.pragma("user_version")
        guard version <= current else {
            throw JournalError(
                .newerSchema, "schema version \(version) is newer than this build's \(current)", path: connection.path)
        }
        for step in Int(version)..<Int(current) {
            try connection.transaction { () throws(JournalError) in
                try connection.execute(migrations[step])
                try connection.execute("PRAGMA user_version = \(step + 1)")
            }
        }
    }

    /// The shard count recorded in the first shard, if any.
    static func recordedShards(_ connection: SQLiteConnection) throws(JournalError) -> Int? {
        let statement = try connection.statement("SELECT value FROM settings WHERE key = 'shards'")
        return try statement.step() ? Int(statement.int64(0)) : nil
    }

    /// Records the shard count in the first shard.
    static func recordShards(_ count: Int, _ connection: SQLiteConnection) throws(JournalError) {
        try connection.transaction { () throws(JournalError) in
            let statement = try connection.statement(
                "INSERT OR REPLACE INTO settings (key, value) VALUES ('shards', ?1)")
            try statement.bind(1, Int64(count))
            try statement.run()
        }
    }

    /// Whether the file holds anything of any actor.
    static func hasData(_ connection: SQLiteConnection) throws(JournalError) -> Bool {
        let statement = try connection.statement(
            """
            SELECT EXISTS (SELECT 1 FROM entries) OR EXISTS (SELECT 1 FROM log) OR EXISTS (SELECT 1 FROM checkpoints)
                OR EXISTS (SELECT 1 FROM ownership) OR EXISTS (SELECT 1 FROM reminders)
                OR EXISTS (SELECT 1 FROM diverged)
            """)
        return try statement.step() && statement.int64(0) != 0
    }
}
