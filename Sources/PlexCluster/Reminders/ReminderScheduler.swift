internal import FoundationEssentials
internal import Logging
internal import PlexCore
internal import PlexJournal
internal import Synchronization

/// A node's reminders role: delivers the due reminders of the actors it owns (durable timers that actors
/// set through `context.schedule`), each as a message in the actor's turn, and retries those it cannot
/// deliver with backoff.
final class ReminderScheduler: Sendable {
    /// How often a node looks for due reminders.
    static var period: Duration { .milliseconds(100) }
    /// How many due reminders a node reads from its journal at a time.
    static var pageSize: Int { 256 }
    /// How many pages a node reads per look at most; the next look goes on from where this one stopped, so
    /// every due reminder is looked at within a few looks, however many there are.
    static var pagesPerLook: Int { 4 }

    let runtime: NodeRuntime
    let membership: Membership
    let directory: ActivationDirectory
    let dispatcher: CallDispatcher
    /// Reminders being delivered, and those waiting to be tried again.
    let retries = Mutex(ReminderRetries())

    init(runtime: NodeRuntime, membership: Membership, directory: ActivationDirectory, dispatcher: CallDispatcher) {
        self.runtime = runtime
        self.membership = membership
        self.directory = directory
        self.dispatcher = dispatcher
    }

    private var logger: Logger { runtime.logger }

    /// Delivers due reminders of the actors this node owns, each in its own task (a slow handler delays
    /// only its own actor).
    ///
    /// Each look reads due reminders in pages from where the last look stopped and starts those that are
    /// neither being delivered nor waiting out a backoff (``ReminderRetries``): one that cannot be delivered
    /// is tried again after 100 ms, 200 ms, … up to a minute, and logged once per attempt, while the ones
    /// after it go ahead.
    func loop() async {
        var position: Reminder?
        while !Task.isCancelled {
            try? await Task.sleep(for: Self.period)
            guard membership.isJoined, runtime.isRunning else { continue }
            let now = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
            for _ in 0..<Self.pagesPerLook {
                let page: [Reminder]
                do {
                    page = try await runtime.journal.dueReminders(at: now, after: position, limit: Self.pageSize)
                } catch {
                    logger.error("cannot read due reminders", metadata: ["error": "\(error)"])
                    break
                }
                for reminder in page {
                    let key = ReminderRetries.Key(reminder)
                    guard retries.withLock({ $0.begin(key, at: NodeRuntime.now()) }) else { continue }
                    if !runtime.tasks.start({ await self.attempt(reminder, key: key) }) {
                        retries.withLock { _ = $0.finish(key, delivered: false, at: NodeRuntime.now()) }
                    }
                }
                guard page.count == Self.pageSize, let last = page.last else {
                    // Every due reminder was looked at: the next look starts from the earliest again.
                    position = nil
                    retries.withLock { $0.endPass() }
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
        let backoff = retries.withLock {
            $0.finish(key, delivered: failure == nil, at: NodeRuntime.now())
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
    ///   the node does not own the actor right now, the activation failed, storage failed.
    func deliver(_ reminder: Reminder) async -> String? {
        let id = reminder.actor
        guard let entry = directory.entry(named: id.typeName) else {
            return "the type \(id.typeName) is not registered on \(runtime.nodeID)"
        }
        switch Result(catching: { () throws(CallError) in try dispatcher.route(id, placement: entry.placement) }) {
        case .success(.local): break
        case .success(.remote): return "\(runtime.nodeID) does not own the actor"
        case .failure(let error): return "\(error)"
        }
        do {
            try await entry.runStored(
                reminder.payload, to: id, idempotencyKey: "plex.reminder/\(reminder.name)/\(reminder.due)",
                in: dispatcher)
        } catch let error where error.code == .remoteFailure {
            // Journaled as a failed message: delivered.
            logger.warning(
                "reminder delivered; its handler failed",
                metadata: ["actor.id": "\(id)", "reminder": "\(reminder.name)", "error": "\(error)"])
        } catch let error where error.code == .invalidRequest {
            // The request no longer decodes as the actor's request type: it never will.
            logger.error(
                "dropping a reminder whose request does not decode",
                metadata: ["actor.id": "\(id)", "reminder": "\(reminder.name)", "error": "\(error)"])
        } catch {
            return "\(error)"
        }
        do {
            try await runtime.journal.removeReminder(reminder)
        } catch {
            // Delivered; the next attempt finds the journaled message by its idempotency key and only deletes.
            return "cannot delete the delivered reminder: \(error)"
        }
        return nil
    }
}
