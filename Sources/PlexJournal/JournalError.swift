/// Why a journal operation failed. Carries SQLite's result code and message, and the file.
public struct JournalError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Wrapped: Sendable { case open, corrupt, newerSchema, diskFull, io, busy, misuse, closed, sqlite }
        let wrapped: Wrapped
        /// The file cannot be opened or created.
        public static let open = Code(wrapped: .open)
        /// The file is not a database or its pages are damaged (`SQLITE_CORRUPT`, `SQLITE_NOTADB`).
        public static let corrupt = Code(wrapped: .corrupt)
        /// The file was written by a newer schema version than this build knows.
        public static let newerSchema = Code(wrapped: .newerSchema)
        /// The disk is full (`SQLITE_FULL`); nothing from the failed transaction was kept.
        public static let diskFull = Code(wrapped: .diskFull)
        /// An I/O error (`SQLITE_IOERR`).
        public static let io = Code(wrapped: .io)
        /// The database is locked by another connection (`SQLITE_BUSY`).
        public static let busy = Code(wrapped: .busy)
        /// The API was used wrongly (a bug in PlexJournal).
        public static let misuse = Code(wrapped: .misuse)
        /// The journal is closed.
        public static let closed = Code(wrapped: .closed)
        /// Any other SQLite error; see ``JournalError/resultCode``.
        public static let sqlite = Code(wrapped: .sqlite)
        public var description: String { String(describing: wrapped) }
    }

    /// What went wrong.
    public var code: Code
    /// A human-readable explanation.
    public var message: String
    /// The journal file.
    public var path: String
    /// SQLite's extended result code, if SQLite reported the error.
    public var resultCode: Int32?

    /// Creates a journal error.
    public init(_ code: Code, _ message: String, path: String, resultCode: Int32? = nil) {
        self.code = code
        self.message = message
        self.path = path
        self.resultCode = resultCode
    }

    public var description: String {
        var text = "JournalError.\(code) in \(path): \(message)"
        if let resultCode { text += " (SQLite result code \(resultCode))" }
        return text
    }
}
