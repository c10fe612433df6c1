internal import CSQLite

/// A thin wrapper over one SQLite connection: prepared statements, typed errors, transactions as closures.
///
/// Not thread-safe: a connection belongs to one thread at a time (the journal's writer thread).
final class SQLiteConnection {
    let path: String
    private var handle: OpaquePointer?

    /// Rows changed by the last statement.
    var changes: Int { handle.map { Int(sqlite3_changes($0)) } ?? 0 }
    private var statements: [String: Statement] = [:]

    /// Opens (creating if needed) the database at `path`.
    init(path: String) throws(JournalError) {
        self.path = path
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, nil)
        guard rc == SQLITE_OK, let db else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close_v2(db)
            throw JournalError(.open, "cannot open: \(message)", path: path, resultCode: rc)
        }
        sqlite3_extended_result_codes(db, 1)
        handle = db
    }

    deinit { close() }

    func close() {
        for statement in statements.values { statement.finalize() }
        statements = [:]
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    /// Closes the connection as if the process died: the write-ahead log stays as it is (not copied into the
    /// database, not deleted), so the next open recovers from it, as after `kill -9`.
    func abandon() {
        if let handle { _ = plex_sqlite3_skip_checkpoint_on_close(handle) }
        close()
    }

    /// The error for result code `rc`, classified.
    func error(_ rc: Int32, _ context: String) -> JournalError {
        let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? "closed"
        let code: JournalError.Code
        switch rc & 0xFF {
        case SQLITE_CORRUPT, SQLITE_NOTADB: code = .corrupt
        case SQLITE_FULL: code = .diskFull
        case SQLITE_IOERR: code = .io
        case SQLITE_BUSY, SQLITE_LOCKED: code = .busy
        case SQLITE_MISUSE: code = .misuse
        case SQLITE_CANTOPEN: code = .open
        default: code = .sqlite
        }
        return JournalError(code, "\(context): \(message)", path: path, resultCode: rc)
    }

    /// Runs SQL with no results (several statements allowed).
    func execute(_ sql: String) throws(JournalError) {
        guard let handle else { throw JournalError(.closed, "connection closed", path: path) }
        // A cached statement left on a row keeps its read transaction open; reset them all so transactions
        // and checkpoints see no other activity on this connection.
        for statement in statements.values { statement.reset() }
        let rc = sqlite3_exec(handle, sql, nil, nil, nil)
        guard rc == SQLITE_OK else { throw error(rc, "executing '\(sql.prefix(60))'") }
    }

    /// A prepared statement for `sql`, cached for the connection's lifetime.
    func statement(_ sql: String) throws(JournalError) -> Statement {
        if let cached = statements[sql] {
            cached.reset()
            return cached
        }
        guard let handle else { throw JournalError(.closed, "connection closed", path: path) }
        var raw: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &raw, nil)
        guard rc == SQLITE_OK, let raw else { throw error(rc, "preparing '\(sql.prefix(60))'") }
        let statement = Statement(raw: raw, connection: self)
        statements[sql] = statement
        return statement
    }

    /// Runs `body` in one transaction (`BEGIN IMMEDIATE` … `COMMIT`); rolls back if it throws.
    func transaction<T>(_ body: () throws(JournalError) -> T) throws(JournalError) -> T {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Runs `body` inside a savepoint of the open transaction. When `body` fails, only its own changes are
    /// undone and the transaction goes on; the error is dropped. Throws only when the savepoint itself fails.
    /// - Returns: Whether `body` succeeded.
    @discardableResult
    func savepoint(_ body: () throws(JournalError) -> Void) throws(JournalError) -> Bool {
        try execute("SAVEPOINT rider")
        var succeeded = true
        do {
            try body()
        } catch {
            succeeded = false
            try execute("ROLLBACK TO rider")
        }
        try execute("RELEASE rider")
        return succeeded
    }

    /// The value of an integer pragma.
    func pragma(_ name: String) throws(JournalError) -> Int64 {
        let statement = try statement("PRAGMA \(name)")
        guard try statement.step() else { return 0 }
        return statement.int64(0)
    }

    /// Checks every page; throws ``JournalError/Code/corrupt`` with SQLite's findings if any is damaged.
    func checkIntegrity() throws(JournalError) {
        let statement = try statement("PRAGMA quick_check")
        var problems: [String] = []
        while try statement.step() {
            let line = statement.text(0) ?? ""
            if line != "ok" { problems.append(line) }
        }
        if !problems.isEmpty {
            throw JournalError(
                .corrupt, "integrity check failed: \(problems.prefix(3).joined(separator: "; "))", path: path)
        }
    }

    var rawHandle: OpaquePointer? { handle }
}

/// A prepared statement. Bind by 1-based index, step, read columns by 0-based index.
final class Statement {
    private let raw: OpaquePointer
    private unowned let connection: SQLiteConnection

    init(raw: OpaquePointer, connection: SQLiteConnection) {
        self.raw = raw
        self.connection = connection
    }

    func reset() {
        sqlite3_reset(raw)
        sqlite3_clear_bindings(raw)
    }

    func finalize() { sqlite3_finalize(raw) }

    func bind(_ index: Int32, _ value: Int64) throws(JournalError) {
        try check(sqlite3_bind_int64(raw, index, value), "binding")
    }

    func bind(_ index: Int32, _ value: String?) throws(JournalError) {
        guard let value else { return try check(sqlite3_bind_null(raw, index), "binding") }
        // SQLITE_TRANSIENT: SQLite copies the text before the call returns.
        try check(
            sqlite3_bind_text(raw, index, value, -1, unsafeBitCast(-1, to: sqlite3_destructor_type.self)), "binding")
    }

    func bind(_ index: Int32, _ value: [UInt8]) throws(JournalError) {
        let rc = value.withUnsafeBytes { bytes in
            sqlite3_bind_blob(
                raw, index, bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32(bytes.count),
                unsafeBitCast(-1, to: sqlite3_destructor_type.self))
        }
        try check(rc, "binding")
    }

    /// Steps once; `true` if a row is available.
    func step() throws(JournalError) -> Bool {
        let rc = sqlite3_step(raw)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw connection.error(rc, "stepping")
        }
    }

    /// Steps a statement that returns no rows.
    func run() throws(JournalError) {
        _ = try step()
    }

    func int64(_ column: Int32) -> Int64 { sqlite3_column_int64(raw, column) }

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(raw, column) == SQLITE_NULL }

    func text(_ column: Int32) -> String? {
        guard let pointer = sqlite3_column_text(raw, column) else { return nil }
        return String(cString: pointer)
    }

    func blob(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(raw, column))
        guard count > 0, let pointer = sqlite3_column_blob(raw, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    private func check(_ rc: Int32, _ context: String) throws(JournalError) {
        guard rc == SQLITE_OK else { throw connection.error(rc, context) }
    }
}
