public import PlexCore

/// A durable reminder: a request to deliver to an actor once its time has come.
public struct Reminder: Sendable, Hashable {
    /// The actor it is for.
    public var actor: ActorID
    /// Its name, unique per actor: setting a reminder again replaces it.
    public var name: String
    /// When it is due: milliseconds since 1970.
    public var due: Int64
    /// The request to deliver, encoded with the journal's codec.
    public var payload: [UInt8]

    /// Creates a reminder.
    public init(actor: ActorID, name: String, due: Int64, payload: [UInt8]) {
        self.actor = actor
        self.name = name
        self.due = due
        self.payload = payload
    }

    /// Whether this reminder comes before `other` in the order ``Journal/dueReminders(at:after:limit:)`` reads
    /// them: by due time, then actor id and name compared as SQLite compares text (by UTF-8 bytes).
    func precedes(_ other: Reminder) -> Bool {
        if due != other.due { return due < other.due }
        let (actor, otherActor) = (self.actor.description, other.actor.description)
        if actor != otherActor { return actor.utf8.lexicographicallyPrecedes(otherActor.utf8) }
        return name.utf8.lexicographicallyPrecedes(other.name.utf8)
    }
}

/// A change to an actor's reminders, journaled with the message that made it.
public enum ReminderUpdate: Sendable, Hashable {
    /// Sets (or replaces) a reminder.
    case set(Reminder)
    /// Cancels the actor's reminder with this name, if any.
    case cancel(ActorID, name: String)

    /// The actor whose reminder this changes.
    public var actor: ActorID {
        switch self {
        case .set(let reminder): reminder.actor
        case .cancel(let actor, _): actor
        }
    }
}

extension Journal {
    /// Reminders due at or before `time` (milliseconds since 1970), in order of due time, then actor id and
    /// name (their UTF-8 bytes), at most `limit`, starting after `position` (the last reminder of the previous
    /// page; `nil` starts at the earliest). Reminders of actors this node handed away are left out (they moved
    /// with the actor).
    ///
    /// Paging lets a caller look past reminders it cannot deliver yet, however many come first.
    public func dueReminders(at time: Int64, after position: Reminder? = nil, limit: Int = 256) async throws
        -> [Reminder]
    {
        var due: [Reminder] = []
        for shard in shards {
            due += try await Self.dueReminders(at: time, after: position, limit: limit, in: shard)
        }
        return Array(due.sorted { $0.precedes($1) }.prefix(limit))
    }

    private static func dueReminders(at time: Int64, after position: Reminder?, limit: Int, in shard: JournalWriter)
        async throws -> [Reminder]
    {
        try await shard.perform(filing: .none) { connection throws(JournalError) in
            // `reminders_by_due` holds (due, actor, name), so this reads the page in order from where the last
            // one ended.
            let statement = try connection.statement(
                """
                SELECT actor, name, due, payload FROM reminders
                WHERE due <= ?1 \(position == nil ? "" : "AND (due, actor, name) > (?3, ?4, ?5)")
                    AND actor NOT IN (SELECT actor FROM ownership WHERE moved_to IS NOT NULL)
                ORDER BY due, actor, name LIMIT ?2
                """)
            try statement.bind(1, time)
            try statement.bind(2, Int64(limit))
            if let position {
                try statement.bind(3, position.due)
                try statement.bind(4, position.actor.description)
                try statement.bind(5, position.name)
            }
            return try Self.reminders(from: statement, connection)
        }
    }

    /// The reminders of `actor`, by name.
    public func reminders(for actor: ActorID) async throws -> [Reminder] {
        try await writer(for: actor).perform(filing: .none) { connection throws(JournalError) in
            try Self.reminders(for: actor, connection)
        }
    }

    static func reminders(for actor: ActorID, _ connection: SQLiteConnection) throws(JournalError) -> [Reminder] {
        let statement = try connection.statement(
            "SELECT actor, name, due, payload FROM reminders WHERE actor = ?1 ORDER BY name")
        try statement.bind(1, actor.description)
        return try reminders(from: statement, connection)
    }

    private static func reminders(from statement: Statement, _ connection: SQLiteConnection)
        throws(JournalError) -> [Reminder]
    {
        var result: [Reminder] = []
        while try statement.step() {
            guard let text = statement.text(0), let actor = try? ActorID(parsing: text) else {
                throw JournalError(
                    .corrupt, "reminder of an actor id '\(statement.text(0) ?? "")' that does not parse",
                    path: connection.path)
            }
            result.append(
                Reminder(
                    actor: actor, name: statement.text(1) ?? "", due: statement.int64(2), payload: statement.blob(3)))
        }
        return result
    }

    /// Deletes a delivered reminder, unless it was set again (with another due time) meanwhile.
    public func removeReminder(_ reminder: Reminder) async throws {
        try await writer(for: reminder.actor).perform(filing: .none) { connection throws(JournalError) in
            try connection.transaction { () throws(JournalError) in
                let statement = try connection.statement(
                    "DELETE FROM reminders WHERE actor = ?1 AND name = ?2 AND due = ?3")
                try statement.bind(1, reminder.actor.description)
                try statement.bind(2, reminder.name)
                try statement.bind(3, reminder.due)
                try statement.run()
            }
        }
    }
}
