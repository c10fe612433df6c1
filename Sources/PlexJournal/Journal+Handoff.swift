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
    /// The epoch the receiver stores it at; higher than any epoch of an earlier copy of the same history.
    public var epoch: UInt64
    /// The history the copy belongs to; `nil` when it carries nothing (the actor never wrote an entry).
    public var lineage: LineageID?
    /// The latest checkpoint, if any.
    public var checkpoint: Checkpoint?
    /// Entries after the checkpoint (replayed by the receiver), and retained keyed entries before it.
    public var entries: [JournalEntry]
    /// The actor's pending reminders.
    public var reminders: [Reminder]

    /// Creates a transfer.
    public init(
        actor: ActorID, epoch: UInt64, lineage: LineageID? = nil, checkpoint: Checkpoint?, entries: [JournalEntry],
        reminders: [Reminder] = []
    ) {
        self.reminders = reminders
        self.actor = actor
        self.epoch = epoch
        self.lineage = lineage
        self.checkpoint = checkpoint
        self.entries = entries
    }

    /// The sequences the copy covers: from the lowest to the highest of its checkpoint's and its entries'
    /// (its state is complete up to the upper bound). `nil` when it carries neither.
    public var sequences: ClosedRange<UInt64>? {
        let all = entries.map(\.sequence) + (checkpoint.map { [$0.sequence] } ?? [])
        guard let lowest = all.min(), let highest = all.max() else { return nil }
        return lowest...highest
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
        var holding = try ownership(of: actor, connection)
        let data = try connection.statement(
            """
            SELECT EXISTS (SELECT 1 FROM entries WHERE actor = ?1)
                OR EXISTS (SELECT 1 FROM checkpoints WHERE actor = ?1)
            """)
        try data.bind(1, actor.description)
        holding.hasData = try data.step() && data.int64(0) != 0
        return holding
    }

    /// `actor`'s ownership row, as a holding without data.
    static func ownership(of actor: ActorID, _ connection: SQLiteConnection) throws(JournalError) -> ActorHolding {
        let row = try connection.statement("SELECT epoch, moved_to FROM ownership WHERE actor = ?1")
        try row.bind(1, actor.description)
        var holding = ActorHolding(epoch: 0, movedTo: nil, hasData: false, isRecorded: false)
        if try row.step() {
            holding.isRecorded = true
            holding.epoch = UInt64(bitPattern: row.int64(0))
            holding.movedTo = row.text(1).map(NodeID.init(unchecked:))
        }
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
                    actor: actor, epoch: epoch,
                    lineage: holding.hasData ? try Self.ensureLineage(of: actor, connection) : nil,
                    checkpoint: checkpoint, entries: entries, reminders: try Self.reminders(for: actor, connection))
                return repeated ? .repeated(transfer) : .transfer(transfer)
            }
        }
    }

    /// Stores a transfer from `sender` if it extends the history this node holds of the actor: a history is
    /// extended, never replaced.
    ///
    /// - This node holds nothing of the actor (no entries, no checkpoint): the transfer is stored (unless
    ///   this node handed the empty actor away at that epoch or later, and another node sends it).
    /// - It holds the same lineage: the transfer is stored if its epoch is higher, it reaches at least the
    ///   last sequence held here, and the entries both hold are identical (an extension). The entries here
    ///   stay; the transfer adds what follows them. A transfer of an epoch this node has passed is ignored.
    /// - Anything else (another lineage, or the same one cut shorter or changed) is refused and kept aside
    ///   (``divergedCopies(of:)``), and the copy here is untouched, with one exception: a copy this node
    ///   handed away (a tombstone) gives way to another lineage coming from the very node it was handed to,
    ///   which refused it or replaced it the same way; that copy is kept aside here too.
    ///
    /// A transfer never deletes an acknowledged entry: what it does not extend is kept aside, not written
    /// over. Epochs of different lineages are not compared.
    /// - Returns: What was done.
    public func adopt(_ transfer: ActorTransfer, from sender: NodeID) async throws -> AdoptOutcome {
        let shard = writer(for: transfer.actor)
        return try await shard.perform(filing: .actor(transfer.actor)) { connection throws(JournalError) in
            let outcome = try connection.transaction { () throws(JournalError) -> AdoptOutcome in
                let actor = transfer.actor
                let holding = try Self.holding(of: actor, connection)
                let lineage = holding.hasData ? try Self.ensureLineage(of: actor, connection) : nil
                let held = AdoptDecision.Held(
                    hasData: holding.hasData, lineage: lineage, isRecorded: holding.isRecorded,
                    epoch: holding.epoch, movedTo: holding.movedTo,
                    lastSequence: try shard.lastSequence(of: actor, connection))
                let (overlap, present) =
                    lineage != nil && lineage == transfer.lineage
                    ? try Self.compare(transfer, upTo: held.lastSequence, connection) : (.agrees, [])
                switch AdoptDecision.decide(held: held, transfer: transfer, from: sender, overlap: overlap) {
                case .ignore:
                    return .alreadyHad
                case .keepAside:
                    guard let lineage else {
                        throw JournalError(
                            .misuse, "kept a transfer of \(actor) aside with nothing here", path: connection.path)
                    }
                    try Self.keepAside(transfer, from: sender, reason: .refused, connection)
                    return .diverged(held: Lineage(id: lineage, epoch: holding.epoch, lastSequence: held.lastSequence))
                case .store(let settingAside):
                    if settingAside, let lineage {
                        let own = ActorTransfer(
                            actor: actor, epoch: holding.epoch, lineage: lineage,
                            checkpoint: try Self.checkpoint(for: actor, connection),
                            entries: try Self.entries(for: actor, where: "1", bindings: [], connection),
                            reminders: try Self.reminders(for: actor, connection))
                        try Self.keepAside(own, from: sender, reason: .superseded, connection)
                        try Self.delete(actor, from: ["entries", "checkpoints"], connection)
                    }
                    try Self.store(transfer, skipping: present, connection)
                    return .stored
                }
            }
            // An activation that read the actor before this committed reads it again (see `ActorRecovery`).
            if case .stored = outcome { shard.noteAdoption() }
            return outcome
        }
    }

    /// Writes `transfer` as the actor's copy here: its entries (except the sequences in `present`, stored
    /// here already), its checkpoint (unless a later one is here), its reminders in place of this node's,
    /// its epoch with no tombstone, and its lineage. The caller holds a transaction.
    private static func store(_ transfer: ActorTransfer, skipping present: Set<UInt64>, _ connection: SQLiteConnection)
        throws(JournalError)
    {
        let actor = transfer.actor.description
        try delete(transfer.actor, from: ["reminders"], connection)
        for entry in transfer.entries where !present.contains(entry.sequence) {
            try JournalWriter.insert(entry, into: connection)
        }
        for reminder in transfer.reminders { try JournalWriter.apply(.set(reminder), to: connection) }
        if let checkpoint = transfer.checkpoint { try Self.insert(checkpoint, connection) }
        let mark = try connection.statement(
            "INSERT OR REPLACE INTO ownership (actor, epoch, moved_to) VALUES (?1, ?2, NULL)")
        try mark.bind(1, actor)
        try mark.bind(2, Int64(bitPattern: transfer.epoch))
        try mark.run()
        // A copy without a lineage that carries entries comes from a build before lineages (see `Schema`).
        guard let lineage = transfer.lineage ?? (transfer.sequences == nil ? nil : .legacy) else { return }
        let record = try connection.statement("INSERT OR REPLACE INTO lineages (actor, id) VALUES (?1, ?2)")
        try record.bind(1, actor)
        try record.bind(2, lineage.bytes)
        try record.run()
    }

    /// How `transfer`'s entries up to `last` compare with those stored here, and which of its sequences
    /// are stored here.
    private static func compare(_ transfer: ActorTransfer, upTo last: UInt64, _ connection: SQLiteConnection)
        throws(JournalError) -> (Overlap, Set<UInt64>)
    {
        let shared = transfer.entries.filter { $0.sequence <= last }
        guard let first = shared.map(\.sequence).min() else { return (.agrees, []) }
        let stored = try entries(
            for: transfer.actor, where: "seq >= ?2 AND seq <= ?3",
            bindings: [Int64(bitPattern: first), Int64(bitPattern: last)], connection)
        let here = Dictionary(stored.map { ($0.sequence, $0) }, uniquingKeysWith: { first, _ in first })
        var overlap = Overlap.agrees
        for entry in shared {
            guard let mine = here[entry.sequence] else {
                overlap = .unverifiable
                continue
            }
            if mine != entry { return (.differs, []) }
        }
        return (overlap, Set(shared.map(\.sequence)).intersection(here.keys))
    }

    private static func delete(_ actor: ActorID, from tables: [String], _ connection: SQLiteConnection)
        throws(JournalError)
    {
        for table in tables {
            let delete = try connection.statement("DELETE FROM \(table) WHERE actor = ?1")
            try delete.bind(1, actor.description)
            try delete.run()
        }
    }

    /// The lineage of `actor`'s history here, created (random) if the actor has none yet. The caller holds a
    /// transaction and knows the actor has data.
    static func ensureLineage(of actor: ActorID, _ connection: SQLiteConnection) throws(JournalError) -> LineageID {
        if let lineage = try lineageID(of: actor, connection) { return lineage }
        let lineage = LineageID.random()
        let record = try connection.statement("INSERT INTO lineages (actor, id) VALUES (?1, ?2)")
        try record.bind(1, actor.description)
        try record.bind(2, lineage.bytes)
        try record.run()
        return lineage
    }

    static func lineageID(of actor: ActorID, _ connection: SQLiteConnection) throws(JournalError) -> LineageID? {
        let statement = try connection.statement("SELECT id FROM lineages WHERE actor = ?1")
        try statement.bind(1, actor.description)
        guard try statement.step() else { return nil }
        guard let lineage = LineageID(bytes: statement.blob(0)) else {
            throw JournalError(
                .corrupt, "the lineage of \(actor) has \(statement.blob(0).count) bytes, not 16", path: connection.path)
        }
        return lineage
    }

    /// Where this node's copy of `actor` stands in its history; `nil` if it holds nothing of the actor.
    public func lineage(of actor: ActorID) async throws -> Lineage? {
        let shard = writer(for: actor)
        return try await shard.perform(filing: .none) { connection throws(JournalError) in
            let holding = try Self.holding(of: actor, connection)
            let last = try shard.lastSequence(of: actor, connection)
            guard holding.hasData || last > 0, let id = try Self.lineageID(of: actor, connection) else { return nil }
            return Lineage(id: id, epoch: holding.epoch, lastSequence: last)
        }
    }

    /// Actors this node recorded as handed to `node` (a tombstone pointing at it), in id order.
    public func actorsHanded(to node: NodeID) async throws -> [ActorID] {
        var actors: [ActorID] = []
        for shard in shards {
            actors += try await shard.perform(filing: .none) { connection throws(JournalError) in
                let statement = try connection.statement(
                    "SELECT actor FROM ownership WHERE moved_to = ?1 ORDER BY actor")
                try statement.bind(1, node.rawValue)
                var found: [ActorID] = []
                while try statement.step() {
                    if let text = statement.text(0), let id = try? ActorID(parsing: text) { found.append(id) }
                }
                return found
            }
        }
        return actors.sorted { $0.description < $1.description }
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
