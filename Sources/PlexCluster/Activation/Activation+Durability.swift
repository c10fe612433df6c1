internal import FoundationEssentials
internal import PlexCore
internal import PlexJournal

/// The journal format of durable actors is the binary codec, fixed: journals outlive wire settings.
let journalCodec = BinaryMessageCodec()

extension Activation {
    var checkpointEvery: Int {
        if case .durable(let every) = A.durability { return max(1, every) }
        return .max
    }

    /// Rebuilds the state from the latest checkpoint and the messages journaled after it.
    ///
    /// - Throws: ``CallError`` `storageFailure` when the journal cannot be read, an entry does not decode,
    ///   or the sequence has a gap. Nothing is skipped: the activation stays unrecovered and the next
    ///   message tries again.
    /// - Parameters:
    ///   - target: Stop after this sequence (time travel); `nil` replays everything. A target before the latest
    ///     checkpoint replays from the beginning.
    ///   - read: What ``PlexJournal/Journal/recovery(of:upTo:)`` read for `target` (by the activation, which
    ///     also needed the holding), if nothing wrote the actor's journal since; `nil`: read it here.
    func recover(upTo target: UInt64? = nil, from read: ActorRecovery? = nil) async throws {
        guard let journal else { return }
        do {
            // Appends refused after a failed one are accepted again once this reads what is durable (the read
            // clears the failure after every write queued before it).
            let recovery: ActorRecovery
            if let read { recovery = read } else { recovery = try await journal.recovery(of: id, upTo: target) }
            // Every write queued before is done; what is durable is read, so the next message's effects wait
            // for nothing.
            lastWrite = nil
            state = A.initialState(for: id)
            sequence = 0
            remembered = [:]
            rememberedOrder = []
            var checkpointed: UInt64 = 0
            if let checkpoint = recovery.checkpoint {
                state = try journalCodec.decode(A.State.self, from: checkpoint.state)
                sequence = checkpoint.sequence
                checkpointed = checkpoint.sequence
            }
            defer {
                // Entries past the checkpoint count toward the next one, whichever activation journaled them:
                // an actor used a few messages at a time still checkpoints once enough have piled up.
                sinceCheckpoint = Int(sequence - checkpointed)
            }
            let pruned = recovery.latestCheckpoint.flatMap { checkpoint in
                target.map { $0 < checkpoint.sequence } ?? false ? checkpoint.sequence : nil
            }
            for entry in recovery.entries where entry.sequence <= target ?? .max {
                guard entry.sequence == sequence + 1 else {
                    if sequence == 0, let pruned {
                        throw CallError(
                            .storageFailure,
                            "journal \(journal.path): \(id) entries before sequence \(entry.sequence) were pruned "
                                + "by its checkpoint at \(pruned), so the state at \(target ?? 0) cannot be "
                                + "rebuilt (keep_history = true keeps them)")
                    }
                    throw CallError(
                        .storageFailure,
                        "journal \(journal.path): \(id) jumps from sequence \(sequence) to \(entry.sequence)")
                }
                sequence = entry.sequence
                guard entry.kind == .message else { continue }
                let request: A.Request
                do {
                    request = try journalCodec.decode(A.Request.self, from: entry.payload)
                } catch {
                    throw CallError(
                        .storageFailure,
                        "journal \(journal.path): \(id) entry \(entry.sequence) does not decode as \(A.Request.self)")
                }
                try await replay(request, entry, journalPath: journal.path)
                if let key = entry.idempotencyKey {
                    remember(key, entry.reply.map { .encoded($0) } ?? .failed(Self.earlierFailure, nil))
                }
            }
            if let target, sequence < target, let pruned {
                throw CallError(
                    .storageFailure,
                    "journal \(journal.path): \(id) entries up to its checkpoint at \(pruned) were "
                        + "pruned, so the state at \(target) cannot be rebuilt (keep_history = true keeps them)")
            }
        } catch let error as CallError {
            throw error
        } catch {
            throw CallError(.storageFailure, "cannot recover \(id): \(error)")
        }
    }

    /// Queues a handled message with its reply (one row) for the next group commit, and a checkpoint after it
    /// if it is time; returns the write the reply must wait for. If the write fails, the in-memory state no
    /// longer matches the journal: the activation recovers before its next message (and the journal fails
    /// any later entry of this actor queued meanwhile). A `nil` response records a message whose handler threw.
    func persist(
        _ request: A.Request, _ response: A.Response?, effects: EffectLog, callID: CallID, idempotencyKey: String?
    ) throws -> PendingWrite {
        guard let journal else { throw CallError(.storageFailure, "\(id) has no journal") }
        let time = Int64(Date().timeIntervalSince1970 * 1000)
        let entry: JournalEntry
        do {
            entry = JournalEntry(
                actor: id, sequence: sequence + 1, kind: .message, time: time, callID: callID,
                idempotencyKey: idempotencyKey, payload: try journalCodec.encode(request),
                reply: try response.map { try storedReply($0, idempotencyKey: idempotencyKey) },
                effects: try effects.encoded())
        } catch {
            phase = .new
            throw CallError(
                .storageFailure, "\(id): the call ran but its entry does not encode, so it was not kept: \(error)")
        }
        let reminders = effects.reminders.map { change -> ReminderUpdate in
            guard let due = change.due else { return .cancel(id, name: change.name) }
            return .set(Reminder(actor: id, name: change.name, due: due, payload: change.payload))
        }
        let write = journal.enqueue([entry], reminders: reminders)
        // Registered first, so the flag is set before any caller hears of the failure.
        write.onComplete { [self] result in
            if case .failure = result { self.needsRecovery.store(true, ordering: .relaxed) }
        }
        sequence += 1
        sinceCheckpoint += 1
        lastWrite = write
        if sinceCheckpoint >= checkpointEvery, let state = try? journalCodec.encode(state) {
            journal.writeCheckpoint(
                Checkpoint(actor: id, sequence: sequence, time: time, state: state), after: write,
                pruningKeysBefore: journal.keepsHistory ? nil : time - retentionMilliseconds)
            sinceCheckpoint = 0
        }
        return write
    }
}

extension Activation {
    /// What a message's entry keeps of its reply: the encoded reply when the call carried an idempotency key
    /// (a retry with the key is answered from it, here or after a handoff or restart); otherwise an empty
    /// blob, which only marks the message as answered (replay checks that it succeeds again). The binary
    /// codec never encodes a value to no bytes, so the two cannot be confused; encoding every reply cost
    /// a workflow instance's start a second encoding of its whole description.
    func storedReply(_ response: A.Response, idempotencyKey: String?) throws -> [UInt8] {
        guard idempotencyKey != nil else { return [] }
        return try journalCodec.encode(response)
    }

    /// Writes a checkpoint of the current state if messages were journaled since the last one.
    func checkpointIfBehind() async throws {
        guard let journal, sinceCheckpoint > 0 else { return }
        // Only a state whose every message is durable may be checkpointed.
        if let lastWrite { try await lastWrite.wait() }
        guard !needsRecovery.load(ordering: .relaxed) else { return }
        let time = Int64(Date().timeIntervalSince1970 * 1000)
        try await journal.write(
            Checkpoint(actor: id, sequence: sequence, time: time, state: try journalCodec.encode(state)),
            pruningKeysBefore: journal.keepsHistory ? nil : time - retentionMilliseconds)
        sinceCheckpoint = 0
    }

    /// Re-runs one journaled message with its recorded side effects. The reply goes nowhere, but the
    /// outcome must match the journal's: a handler that now fails where it succeeded (or the reverse), or
    /// asks for fewer, more or other effects, is not deterministic, and recovery stops rather than build a
    /// different state. A recorded effect that threw throws the same error again, so a handler that caught
    /// it takes the same path.
    func replay(_ request: A.Request, _ entry: JournalEntry, journalPath: String) async throws {
        let recorded: [EffectLog.Effect]
        do {
            recorded = try entry.effects.map(EffectLog.decode) ?? []
        } catch {
            throw CallError(
                .storageFailure, "journal \(journalPath): \(id) entry \(entry.sequence) has unreadable effects")
        }
        let effects = EffectLog(replaying: recorded)
        var context = makeContext(entry.callID, entry.idempotencyKey, true)
        context.effects = effects
        context.requestType = A.Request.self
        let succeeded: Bool
        do {
            _ = try await behaviour.handle(request, state: &state, context: context)
            succeeded = true
        } catch {
            succeeded = false
        }
        do {
            // Checked even when the handler caught the error: a departure from the journal is never hidden.
            try effects.finishReplay()
        } catch let error as CallError {
            throw CallError(
                .storageFailure, "journal \(journalPath): replaying \(id) entry \(entry.sequence): \(error.message)")
        }
        guard succeeded == (entry.reply != nil) else {
            throw CallError(
                .storageFailure,
                "non-determinism: replaying \(id) entry \(entry.sequence) \(succeeded ? "succeeded" : "failed"), "
                    + "but the original call \(succeeded ? "failed" : "succeeded") (journal \(journalPath))")
        }
    }
}

/// What an activation remembers about a call that carried an idempotency key.
enum Remembered<Response: Sendable>: Sendable {
    /// Handled by this activation; its journal write (durable types) may still be committing.
    case response(Response, PendingWrite?)
    /// A reply read from the journal, decoded when a retry asks for it.
    case encoded([UInt8])
    /// The call failed (the write, if any, recorded the failed message).
    case failed(CallError, PendingWrite?)
}

extension Activation {
    /// Idempotency keys kept in memory per activation; older ones are found in the journal (durable types).
    static var rememberLimit: Int { 10_000 }

    /// The error a retry gets when the original call with its key failed.
    static var earlierFailure: CallError {
        CallError(.remoteFailure, "the earlier call with this idempotency key failed; it is not run again")
    }

    func remember(_ key: String, _ outcome: Remembered<A.Response>) {
        if remembered.updateValue(outcome, forKey: key) == nil {
            rememberedOrder.append(key)
            if rememberedOrder.count > Self.rememberLimit, let oldest = rememberedOrder.popFirst() {
                remembered.removeValue(forKey: oldest)
            }
        }
    }

    /// The reply of an earlier call with `key` (or its error, thrown), with the write it waits for; `nil` if
    /// there was none. Kept out of `run`, whose async frame would otherwise carry these generic types
    /// (and look up their metadata) on every call.
    @inline(never)
    func answer(_ key: String, write: inout PendingWrite?) async throws -> A.Response? {
        guard let earlier = try await earlierOutcome(of: key) else { return nil }
        write = earlier.write  // a duplicate waits for the same write
        return try earlier.outcome.get()
    }

    /// The outcome of an earlier call with `key`, if this actor processed one (within the retention).
    func earlierOutcome(of key: String) async throws -> (
        outcome: Result<A.Response, CallError>, write: PendingWrite?
    )? {
        var outcome: Remembered<A.Response>? = remembered[key]
        if outcome == nil, let journal {
            // After a restart, keys processed before the latest checkpoint are only in the journal.
            let notBefore = Int64(Date().timeIntervalSince1970 * 1000) - retentionMilliseconds
            do {
                if let found = try await journal.message(for: id, idempotencyKey: key, notBefore: notBefore) {
                    outcome = found.reply.map { .encoded($0) } ?? .failed(Self.earlierFailure, nil)
                }
            } catch {
                throw CallError(.storageFailure, "cannot look up an idempotency key of \(id): \(error)")
            }
        }
        switch outcome {
        case nil: return nil
        case .response(let response, let write): return (.success(response), write)
        case .failed(let error, let write): return (.failure(error), write)
        case .encoded(let bytes):
            do {
                return (.success(try journalCodec.decode(A.Response.self, from: bytes)), nil)
            } catch {
                throw CallError(.storageFailure, "the stored reply for \(id) does not decode as \(A.Response.self)")
            }
        }
    }
}
