internal import FoundationEssentials
internal import NIOCore
internal import PlexCore
internal import PlexJournal

extension PlexNode {
    /// How often a node looks for due reminders.
    static var reminderPeriod: Duration { .milliseconds(100) }

    /// Delivers due reminders of the actors this node owns, each in its own task (a slow handler delays
    /// only its own actor).
    func reminderLoop() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.reminderPeriod)
            guard joined.load(ordering: .relaxed), running.load(ordering: .relaxed) else { continue }
            let now = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
            let due: [Reminder]
            do {
                due = try await journal.dueReminders(at: now)
            } catch {
                logger.error("cannot read due reminders", metadata: ["error": "\(error)"])
                continue
            }
            for reminder in due {
                let key = "\(reminder.actor)\u{0}\(reminder.name)\u{0}\(reminder.due)"
                guard remindersInFlight.withLock({ $0.insert(key).inserted }) else { continue }
                Task {
                    await self.deliver(reminder)
                    _ = self.remindersInFlight.withLock { $0.remove(key) }
                }
            }
        }
    }

    /// Delivers one reminder as a message through the actor's handler, with the idempotency key
    /// `plex.reminder/<name>/<due>`, then deletes it. A delivery that may not have been journaled (the node
    /// does not own the actor right now, the activation went away, storage failed) leaves it for the next look.
    func deliver(_ reminder: Reminder) async {
        let id = reminder.actor
        guard let entry = types.withLock({ $0[id.typeName] }) else {
            logger.warning("reminder for a type not registered here", metadata: ["actor.id": "\(id)"])
            return
        }
        guard case .local = try? route(id, placement: entry.placement) else { return }
        let activation = self.activation(for: id, entry: entry)
        await activation.mailbox.acquire()
        var write: PendingWrite?
        var handlerFailure: CallError?
        do {
            defer { activation.mailbox.release() }
            guard table.existing(id) === activation else { return }
            _ = try await entry.handleEncoded(
                activation, payload: ByteBuffer(bytes: reminder.payload), json: false, callID: nextCallID(),
                idempotencyKey: "plex.reminder/\(reminder.name)/\(reminder.due)", codec: journalCodec, now: Self.now(),
                write: &write)
        } catch ActivationFailure.deactivated {
            return
        } catch let error as CallError where error.code == .remoteFailure {
            handlerFailure = error  // journaled as a failed message: delivered
        } catch let error as CallError where error.code == .invalidRequest {
            // The request no longer decodes as the actor's request type: it never will.
            logger.error(
                "dropping a reminder whose request does not decode",
                metadata: ["actor.id": "\(id)", "reminder": "\(reminder.name)", "error": "\(error)"])
        } catch {
            logger.warning(
                "reminder not delivered; trying again", metadata: ["actor.id": "\(id)", "error": "\(error)"])
            return
        }
        do {
            try await OutputGate.wait(for: write, actor: id)
        } catch {
            logger.warning(
                "reminder not journaled; trying again", metadata: ["actor.id": "\(id)", "error": "\(error)"])
            return
        }
        if let handlerFailure {
            logger.warning(
                "reminder delivered; its handler failed",
                metadata: ["actor.id": "\(id)", "reminder": "\(reminder.name)", "error": "\(handlerFailure)"])
        }
        do {
            try await journal.removeReminder(reminder)
        } catch {
            logger.error("cannot delete a delivered reminder", metadata: ["actor.id": "\(id)", "error": "\(error)"])
        }
    }
}
