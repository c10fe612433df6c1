internal import FoundationEssentials
internal import NIOCore
internal import PlexCore
internal import PlexJournal

extension PlexNode {
    /// How often a node looks for due reminders.
    static var reminderPeriod: Duration { .milliseconds(100) }
    /// How many due reminders a node reads from its journal at a time.
    static var reminderPageSize: Int { 256 }
    /// How many pages a node reads per look at most; the next look goes on from where this one stopped, so
    /// every due reminder is looked at within a few looks, however many there are.
    static var reminderPagesPerLook: Int { 4 }

    /// Delivers due reminders of the actors this node owns, each in its own task (a slow handler delays
    /// only its own actor).
    ///
    /// Each look reads due reminders in pages from where the last look stopped and starts those that are
    /// neither being delivered nor waiting out a backoff (``ReminderRetries``): one that cannot be delivered
    /// is tried again after 100 ms, 200 ms, … up to a minute, and logged once per attempt, while the ones
    /// after it go ahead.
    func reminderLoop() async {
        var position: Reminder?
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.reminderPeriod)
            guard joined.load(ordering: .relaxed), running.load(ordering: .relaxed) else { continue }
            let now = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
            for _ in 0..<Self.reminderPagesPerLook {
                let page: [Reminder]
                do {
                    page = try await journal.dueReminders(at: now, after: position, limit: Self.reminderPageSize)
                } catch {
                    logger.error("cannot read due reminders", metadata: ["error": "\(error)"])
                    break
                }
                for reminder in page {
                    let key = ReminderRetries.Key(reminder)
                    guard reminderRetries.withLock({ $0.begin(key, at: Self.now()) }) else { continue }
                    Task { await self.attempt(reminder, key: key) }
                }
                guard page.count == Self.reminderPageSize, let last = page.last else {
                    // Every due reminder was looked at: the next look starts from the earliest again.
                    position = nil
                    reminderRetries.withLock { $0.endPass() }
                    break
                }
                position = last
            }
        }
    }

    /// Delivers `reminder` and records the outcome; a failure is logged once, with the wait before the
    /// next attempt.
    private func attempt(_ reminder: Reminder, key: ReminderRetries.Key) async {
        let failure = await deliver(reminder)
        let backoff = reminderRetries.withLock {
            $0.finish(key, delivered: failure == nil, at: Self.now())
        }
        guard let failure, let backoff else { return }
        logger.warning(
            "reminder not delivered; trying again later",
            metadata: [
                "actor.id": "\(reminder.actor)", "reminder": "\(reminder.name)", "reason": "\(failure)",
                "attempt": "\(backoff.failures)", "retry.ms": "\(backoff.delay / 1_000_000)",
            ])
    }

    /// Delivers one reminder as a message through the actor's handler, with the idempotency key
    /// `plex.reminder/<name>/<due>`, then deletes it.
    ///
    /// - Returns: `nil` once the reminder is delivered (or dropped, when its request no longer decodes), or
    ///   why it was not, when its delivery may not have been journaled: the type is not registered here,
    ///   the node does not own the actor right now, the activation went away or failed, storage failed.
    func deliver(_ reminder: Reminder) async -> String? {
        let id = reminder.actor
        guard let entry = types.withLock({ $0[id.typeName] }) else {
            return "the type \(id.typeName) is not registered on \(nodeID)"
        }
        switch Result(catching: { try route(id, placement: entry.placement) }) {
        case .success(.local): break
        case .success(.remote): return "\(nodeID) does not own the actor"
        case .failure(let error): return "\(error)"
        }
        let activation = self.activation(for: id, entry: entry)
        await activation.mailbox.acquire()
        var write: PendingWrite?
        var handlerFailure: CallError?
        do {
            defer { activation.mailbox.release() }
            guard table.existing(id) === activation else { return "the activation went away" }
            _ = try await entry.handleEncoded(
                activation, payload: ByteBuffer(bytes: reminder.payload), json: false, callID: nextCallID(),
                idempotencyKey: "plex.reminder/\(reminder.name)/\(reminder.due)", codec: journalCodec, now: Self.now(),
                write: &write)
        } catch ActivationFailure.deactivated {
            return "the activation went away"
        } catch let error as CallError where error.code == .remoteFailure {
            handlerFailure = error  // journaled as a failed message: delivered
        } catch let error as CallError where error.code == .invalidRequest {
            // The request no longer decodes as the actor's request type: it never will.
            logger.error(
                "dropping a reminder whose request does not decode",
                metadata: ["actor.id": "\(id)", "reminder": "\(reminder.name)", "error": "\(error)"])
        } catch {
            return "\(error)"
        }
        do {
            try await OutputGate.wait(for: write, actor: id)
        } catch {
            return "\(error)"
        }
        if let handlerFailure {
            logger.warning(
                "reminder delivered; its handler failed",
                metadata: ["actor.id": "\(id)", "reminder": "\(reminder.name)", "error": "\(handlerFailure)"])
        }
        do {
            try await journal.removeReminder(reminder)
        } catch {
            // Delivered; the next attempt finds the journaled message by its idempotency key and only deletes.
            return "cannot delete the delivered reminder: \(error)"
        }
        return nil
    }
}
