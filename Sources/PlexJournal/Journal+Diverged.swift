internal import Foundation
public import PlexCore

/// A copy of a durable actor kept aside because it did not extend the history this node held
/// (see ``Journal/adopt(_:from:)``). Nothing in it was applied; it stays until an operator deals with it.
public struct DivergedCopy: Sendable, Hashable {
    /// Why it was kept aside.
    public enum Reason: Int64, Sendable, Hashable {
        /// A transfer this node refused: another lineage than its own, or the same one cut short or changed.
        case refused = 1
        /// This node's own copy, handed away earlier, set aside when the node it was handed to sent back
        /// another lineage.
        case superseded = 2
    }

    /// Why it was kept aside.
    public var reason: Reason
    /// The node whose transfer was refused, or (``Reason/superseded``) replaced this node's copy.
    public var from: NodeID
    /// When it was kept aside: milliseconds since 1970.
    public var time: Int64
    /// The copy as it was: actor, lineage, epoch, checkpoint, entries and reminders.
    public var transfer: ActorTransfer
}

/// A kept copy as the `diverged` table stores it (with `BinaryMessageCodec`, whose keyed form lets fields be
/// added later).
private struct StoredCopy: Codable {
    struct Entry: Codable {
        var sequence: UInt64
        var kind: UInt8
        var time: Int64
        var callID: CallID?
        var idempotencyKey: String?
        var payload: [UInt8]
        var reply: [UInt8]?
        var effects: [UInt8]?
    }
    struct State: Codable {
        var sequence: UInt64
        var time: Int64
        var state: [UInt8]
    }
    struct Alarm: Codable {
        var name: String
        var due: Int64
        var payload: [UInt8]
    }
    var actor: ActorID
    var epoch: UInt64
    var lineage: LineageID?
    var checkpoint: State?
    var entries: [Entry]
    var reminders: [Alarm]

    init(_ transfer: ActorTransfer) {
        actor = transfer.actor
        epoch = transfer.epoch
        lineage = transfer.lineage
        checkpoint = transfer.checkpoint.map { State(sequence: $0.sequence, time: $0.time, state: $0.state) }
        entries = transfer.entries.map {
            Entry(
                sequence: $0.sequence, kind: $0.kind.rawValue, time: $0.time, callID: $0.callID,
                idempotencyKey: $0.idempotencyKey, payload: $0.payload, reply: $0.reply, effects: $0.effects)
        }
        reminders = transfer.reminders.map { Alarm(name: $0.name, due: $0.due, payload: $0.payload) }
    }

    /// The transfer; `nil` if an entry has a kind this build does not know.
    var transfer: ActorTransfer? {
        var decoded: [JournalEntry] = []
        for entry in entries {
            guard let kind = JournalEntry.Kind(rawValue: entry.kind) else { return nil }
            decoded.append(
                JournalEntry(
                    actor: actor, sequence: entry.sequence, kind: kind, time: entry.time, callID: entry.callID,
                    idempotencyKey: entry.idempotencyKey, payload: entry.payload, reply: entry.reply,
                    effects: entry.effects))
        }
        return ActorTransfer(
            actor: actor, epoch: epoch, lineage: lineage,
            checkpoint: checkpoint.map {
                Checkpoint(actor: actor, sequence: $0.sequence, time: $0.time, state: $0.state)
            },
            entries: decoded,
            reminders: reminders.map { Reminder(actor: actor, name: $0.name, due: $0.due, payload: $0.payload) })
    }
}

extension Journal {
    /// Keeps `transfer` aside in the `diverged` table (encoded with `BinaryMessageCodec`); a copy already
    /// kept (same actor, reason, lineage, epoch, sender and sequences: a repeated transfer) is not kept
    /// twice. The caller holds a transaction.
    static func keepAside(
        _ transfer: ActorTransfer, from sender: NodeID, reason: DivergedCopy.Reason, _ connection: SQLiteConnection
    ) throws(JournalError) {
        let encoded: [UInt8]
        do {
            encoded = try BinaryMessageCodec().encode(StoredCopy(transfer))
        } catch {
            throw JournalError(.misuse, "cannot encode a copy of \(transfer.actor): \(error)", path: connection.path)
        }
        let statement = try connection.statement(
            """
            INSERT OR IGNORE INTO diverged
                (actor, reason, lineage, epoch, from_node, first_seq, last_seq, time, transfer)
            VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
            """)
        try statement.bind(1, transfer.actor.description)
        try statement.bind(2, reason.rawValue)
        try statement.bind(3, transfer.lineage?.bytes ?? [])
        try statement.bind(4, Int64(bitPattern: transfer.epoch))
        try statement.bind(5, sender.rawValue)
        try statement.bind(6, Int64(bitPattern: transfer.sequences?.lowerBound ?? 0))
        try statement.bind(7, Int64(bitPattern: transfer.sequences?.upperBound ?? 0))
        try statement.bind(8, Int64(Date().timeIntervalSince1970 * 1000))
        try statement.bind(9, encoded)
        try statement.run()
    }

    /// The copies kept aside, of `actor` or (`nil`) of every actor, oldest first per shard.
    /// - Throws: ``JournalError`` `corrupt` when a kept copy does not decode.
    public func divergedCopies(of actor: ActorID? = nil) async throws -> [DivergedCopy] {
        var copies: [DivergedCopy] = []
        for shard in actor.map({ [writer(for: $0)] }) ?? shards {
            copies += try await shard.perform(filing: .none) { connection throws(JournalError) in
                let statement = try connection.statement(
                    "SELECT reason, from_node, time, transfer FROM diverged WHERE ?1 IS NULL OR actor = ?1 ORDER BY id")
                try statement.bind(1, actor?.description)
                var copies: [DivergedCopy] = []
                while try statement.step() {
                    let stored: StoredCopy
                    do {
                        stored = try BinaryMessageCodec().decode(StoredCopy.self, from: statement.blob(3))
                    } catch {
                        throw JournalError(.corrupt, "a diverged copy does not decode: \(error)", path: connection.path)
                    }
                    guard let transfer = stored.transfer else {
                        throw JournalError(.corrupt, "a diverged copy has an unknown entry kind", path: connection.path)
                    }
                    guard let reason = DivergedCopy.Reason(rawValue: statement.int64(0)) else {
                        throw JournalError(
                            .corrupt, "a diverged copy has reason \(statement.int64(0))", path: connection.path)
                    }
                    copies.append(
                        DivergedCopy(
                            reason: reason,
                            from: NodeID(unchecked: statement.text(1) ?? ""), time: statement.int64(2),
                            transfer: transfer))
                }
                return copies
            }
        }
        return copies
    }

    /// How many copies are kept aside in the connection's shard.
    static func divergedCount(_ connection: SQLiteConnection) throws(JournalError) -> Int {
        let statement = try connection.statement("SELECT COUNT(*) FROM diverged")
        return try statement.step() ? Int(statement.int64(0)) : 0
    }
}
