internal import FoundationEssentials
internal import PlexCore
internal import PlexJournal
internal import PlexWire

extension ActorTransfer {
    /// The transfer as it travels in a `handoff` frame.
    var message: Plexspaces_V1_ActorTransfer {
        var message = Plexspaces_V1_ActorTransfer()
        message.actor = actor.description
        message.epoch = epoch
        if let lineage { message.lineage = Data(lineage.bytes) }
        if lineage != nil, let sequences {
            message.firstSequence = sequences.lowerBound
            message.lastSequence = sequences.upperBound
        }
        if let checkpoint {
            message.hasCheckpoint_p = true
            message.checkpointSequence = checkpoint.sequence
            message.checkpointTime = checkpoint.time
            message.checkpointState = Data(checkpoint.state)
        }
        message.entries = entries.map { entry in
            var wire = Plexspaces_V1_TransferredEntry()
            wire.sequence = entry.sequence
            wire.kind = UInt32(entry.kind.rawValue)
            wire.time = entry.time
            if let callID = entry.callID {
                wire.hasCallID_p = true
                wire.callOrigin = callID.origin
                wire.callSequence = callID.sequence
            }
            if let key = entry.idempotencyKey { wire.idempotencyKey = key }
            wire.payload = Data(entry.payload)
            if let reply = entry.reply { wire.reply = Data(reply) }
            if let effects = entry.effects { wire.effects = Data(effects) }
            return wire
        }
        message.reminders = reminders.map { reminder in
            var wire = Plexspaces_V1_TransferredReminder()
            wire.name = reminder.name
            wire.due = reminder.due
            wire.payload = Data(reminder.payload)
            return wire
        }
        return message
    }

    /// Reads a transfer from its wire form.
    ///
    /// A transfer with entries and no lineage comes from a build before lineages: its history is the
    /// legacy lineage, as the schema migration gives such histories.
    /// - Throws: ``CallError`` `invalidRequest` when the actor id, an entry kind or the lineage is not
    ///   valid, or the sequences it claims to cover are not those it carries.
    init(_ message: Plexspaces_V1_ActorTransfer) throws {
        let actor: ActorID
        do {
            actor = try ActorID(parsing: message.actor)
        } catch {
            throw CallError(.invalidRequest, "handoff of an invalid actor id '\(message.actor)'")
        }
        let checkpoint =
            message.hasCheckpoint_p
            ? Checkpoint(
                actor: actor, sequence: message.checkpointSequence, time: message.checkpointTime,
                state: Array(message.checkpointState))
            : nil
        let entries = try message.entries.map { wire in
            guard let kind = JournalEntry.Kind(rawValue: UInt8(clamping: wire.kind)) else {
                throw CallError(.invalidRequest, "handoff of \(actor): entry \(wire.sequence) has kind \(wire.kind)")
            }
            return JournalEntry(
                actor: actor, sequence: wire.sequence, kind: kind, time: wire.time,
                callID: wire.hasCallID_p ? CallID(origin: wire.callOrigin, sequence: wire.callSequence) : nil,
                idempotencyKey: wire.hasIdempotencyKey ? wire.idempotencyKey : nil, payload: Array(wire.payload),
                reply: wire.hasReply ? Array(wire.reply) : nil, effects: wire.hasEffects ? Array(wire.effects) : nil)
        }
        let reminders = message.reminders.map {
            Reminder(actor: actor, name: $0.name, due: $0.due, payload: Array($0.payload))
        }
        self.init(actor: actor, epoch: message.epoch, checkpoint: checkpoint, entries: entries, reminders: reminders)
        let carried = (sequences?.lowerBound ?? 0, sequences?.upperBound ?? 0)
        let claimed = (message.firstSequence, message.lastSequence)
        if message.lineage.isEmpty {
            guard claimed == (0, 0) else {
                throw CallError(.invalidRequest, "handoff of \(actor): sequences without a lineage")
            }
            lineage = sequences == nil ? nil : .legacy
            return
        }
        guard let lineage = LineageID(bytes: Array(message.lineage)) else {
            throw CallError(
                .invalidRequest, "handoff of \(actor): a lineage of \(message.lineage.count) bytes, not 16")
        }
        guard claimed == carried else {
            throw CallError(
                .invalidRequest,
                "handoff of \(actor): claims sequences \(claimed.0)...\(claimed.1), carries \(carried.0)...\(carried.1)"
            )
        }
        self.lineage = lineage
    }
}
