public import PlexCore

/// Where this node stands with an actor's durable state.
public struct ActorHolding: Sendable, Hashable {
    /// The actor's handoff epoch here (0 until it was first transferred).
    public var epoch: UInt64
    /// The node this one handed the actor to, if it did (the local copy is then stale and must not be used).
    public var movedTo: NodeID?
    /// Whether the journal holds entries or a checkpoint of the actor.
    public var hasData: Bool
    /// Whether the ownership table has a row for the actor (a transfer or a check recorded it).
    public var isRecorded: Bool

    /// Whether this node's copy is the one to use: it has data or a record, and did not hand it away.
    public var isHeld: Bool { movedTo == nil && (hasData || isRecorded) }
}

/// An actor's durable state on its way to a new owner: its latest checkpoint, the entries after it, and the
/// earlier entries whose idempotency keys are still retained.
public struct ActorTransfer: Sendable, Hashable {
    /// The actor.
    public var actor: ActorID
    /// The epoch the receiver stores it at; higher than any epoch of an earlier copy.
    public var epoch: UInt64
    /// The latest checkpoint, if any.
    public var checkpoint: Checkpoint?
    /// Entries after the checkpoint (replayed by the receiver), and retained keyed entries before it.
    public var entries: [JournalEntry]
    /// The actor's pending reminders.
    public var reminders: [Reminder]

    /// Creates a transfer.
    public init(
        actor: ActorID, epoch: UInt64, checkpoint: Checkpoint?, entries: [JournalEntry], reminders: [Reminder] = []
    ) {
        self.reminders = reminders
        self.actor = actor
        self.epoch = epoch
        self.checkpoint = checkpoint
        self.entries = entries
    }
}

/// What ``Journal/beginHandOff(_:to:keysSince:)`` found.
public enum HandOffStart: Sendable, Hashable {
    /// The actor's state, now recorded here as handed to the receiver.
    case transfer(ActorTransfer)
    /// The actor's state, recorded as handed to this receiver before: the receiver may have it already
    /// (an earlier transfer that arrived), so a refusal now does not mean it never got there.
    case repeated(ActorTransfer)
    /// This node handed the actor to another node before.
    case movedTo(NodeID)
    /// This node has nothing of the actor.
    case notHeld
}

extension Journal {
    /// Where this node stands with `actor`.
    public func holding(of actor: ActorID) async throws -> ActorHolding {
        let shard = writer(for: actor)
        return try await shard.perform(filing: .none) { connection throws(JournalError) in
            var holding = try Self.holding(of: actor, connection)
            if shard.unfiled.backlogs[actor] != nil { holding.hasData = true }
            return holding
        }
    }

    static func holding(of actor: ActorID, _ connection: SQLiteConnection) throws(JournalError) -> ActorHolding {
        let row = try connection.statement("SELECT epoch, moved_to FROM ownership WHERE actor = ?1")
        try row.bind(1, actor.description)
        var holding = ActorHolding(epoch: 0, movedTo: nil, hasData: false, isRecorded: false)
        if try row.step() {
            holding.isRecorded = true
            holding.epoch = UInt64(bitPattern: row.int64(0))
            holding.movedTo = row.text(1).map(NodeID.init(unchecked:))
        }
        let data = try connection.statement(
            """
            SELECT EXISTS (SELECT 1 FROM entries WHERE actor = ?1)
                OR EXISTS (SELECT 1 FROM checkpoints WHERE actor = ?1)
            """)
        try data.bind(1, actor.description)
        holding.hasData = try data.step() && data.int64(0) != 0
        return holding
    }

    /// Records that this node holds `actor` (nobody else had it), so later activations need not ask again.
    public func recordHeld(_ actor: ActorID) async throws {
        try await updateOwnership(
            of: actor, "INSERT INTO ownership (actor, epoch, moved_to) VALUES (?1, 0, NULL) ON CONFLICT DO NOTHING")
    }

    /// Takes `actor` back after a handoff that its receiver says never arrived, or whose receiver is gone:
    /// clears the tombstone and raises the epoch, so a copy the receiver may still have loses to this one.
    public func reclaim(_ actor: ActorID) async throws {
        try await updateOwnership(
            of: actor,
            "UPDATE ownership SET moved_to = NULL, epoch = epoch + 1 WHERE actor = ?1 AND moved_to IS NOT NULL")
    }

    /// Runs one statement on `actor`'s ownership row (`?1` is the actor), in a transaction of its own.
    private func updateOwnership(of actor: ActorID, _ sql: String) async throws {
        try await writer(for: actor).perform(filing: .none) { connection throws(JournalError) in
            try connection.transaction { () throws(JournalError) in
                let statement = try connection.statement(sql)
                try statement.bind(1, actor.description)
                try statement.run()
            }
        }
    }

    /// Starts handing `actor` to `node`: in one transaction, records the tombstone (a new epoch, or the same
    /// one when this repeats a handoff to the same node) and reads what the receiver needs.
    ///
    /// The caller must hold the actor's turn and have checkpointed any state not yet in the journal. From
    /// the moment this returns, this node must not activate the actor from its own copy.
    /// - Parameter keysSince: Entries before the checkpoint travel only if they carry an idempotency key
    ///   written at or after this time (milliseconds since 1970).
    public func beginHandOff(_ actor: ActorID, to node: NodeID, keysSince: Int64) async throws -> HandOffStart {
        try await writer(for: actor).perform(filing: .actor(actor)) { connection throws(JournalError) in
            try connection.transaction { () throws(JournalError) -> HandOffStart in
                let holding = try Self.holding(of: actor, connection)
                if let movedTo = holding.movedTo, movedTo != node { return .movedTo(movedTo) }
                guard holding.hasData || holding.isRecorded else { return .notHeld }
                let repeated = holding.movedTo == node
                let epoch = repeated ? holding.epoch : holding.epoch + 1
                let mark = try connection.statement(
                    "INSERT OR REPLACE INTO ownership (actor, epoch, moved_to) VALUES (?1, ?2, ?3)")
                try mark.bind(1, actor.description)
                try mark.bind(2, Int64(bitPattern: epoch))
                try mark.bind(3, node.rawValue)
                try mark.run()
                let checkpoint = try Self.checkpoint(for: actor, connection)
                let after = checkpoint?.sequence ?? 0
                let entries = try Self.entries(
                    for: actor,
                    where: "seq > ?2 OR (idempotency_key IS NOT NULL AND time >= ?3)",
                    bindings: [Int64(bitPattern: after), keysSince], connection)
                // The reminders stay here too, inert while the tombstone stands (see `dueReminders`).
                let transfer = ActorTransfer(
                    actor: actor, epoch: epoch, checkpoint: checkpoint, entries: entries,
                    reminders: try Self.reminders(for: actor, connection))
                return repeated ? .repeated(transfer) : .transfer(transfer)
            }
        }
    }

    /// Stores a transfer from the actor's previous owner, replacing whatever this node had of the actor,
    /// unless this node already has that epoch or a later one.
    /// - Returns: Whether it was stored (`false`: a repeat or a stale copy, ignored).
    @discardableResult
    public func adopt(_ transfer: ActorTransfer) async throws -> Bool {
        try await writer(for: transfer.actor).perform(filing: .actor(transfer.actor)) {
            connection throws(JournalError) in
            try connection.transaction { () throws(JournalError) -> Bool in
                let actor = transfer.actor.description
                let holding = try Self.holding(of: transfer.actor, connection)
                guard !holding.isRecorded || holding.epoch < transfer.epoch else { return false }
                for sql in [
                    "DELETE FROM entries WHERE actor = ?1", "DELETE FROM checkpoints WHERE actor = ?1",
                    "DELETE FROM reminders WHERE actor = ?1",
                ] {
                    let delete = try connection.statement(sql)
                    try delete.bind(1, actor)
                    try delete.run()
                }
                for entry in transfer.entries { try JournalWriter.insert(entry, into: connection) }
                for reminder in transfer.reminders { try JournalWriter.apply(.set(reminder), to: connection) }
                if let checkpoint = transfer.checkpoint {
                    try Self.insert(checkpoint, connection)
                }
                let mark = try connection.statement(
                    "INSERT OR REPLACE INTO ownership (actor, epoch, moved_to) VALUES (?1, ?2, NULL)")
                try mark.bind(1, actor)
                try mark.bind(2, Int64(bitPattern: transfer.epoch))
                try mark.run()
                return true
            }
        }
    }

    /// Actors whose state this node holds (entries or a checkpoint, not handed away), in id order.
    public func heldActors() async throws -> [ActorID] {
        var actors: [ActorID] = []
        for shard in shards { actors += try await Self.heldActors(in: shard) }
        return actors.sorted { $0.description < $1.description }
    }

    private static func heldActors(in shard: JournalWriter) async throws -> [ActorID] {
        try await shard.perform(filing: .none) { connection throws(JournalError) in
            let unfiled = shard.unfiledRows()
            let statement = try connection.statement(
                """
                SELECT actor FROM (SELECT actor FROM checkpoints UNION SELECT actor FROM entries
                    UNION SELECT actor FROM log WHERE \(unfiled.condition))
                WHERE actor NOT IN (SELECT actor FROM ownership WHERE moved_to IS NOT NULL)
                ORDER BY actor
                """)
            try statement.bind(1, unfiled.first)
            var actors: [ActorID] = []
            while try statement.step() {
                guard let text = statement.text(0), let id = try? ActorID(parsing: text) else {
                    throw JournalError(
                        .corrupt, "actor id '\(statement.text(0) ?? "")' does not parse", path: connection.path)
                }
                actors.append(id)
            }
            return actors
        }
    }
}
