internal import PlexCore
internal import PlexJournal

/// Which due reminders a node tries to deliver now, and when it tries again one it could not deliver.
///
/// A reminder that could not be delivered (its type is not registered here, its actor is owned elsewhere or
/// will not activate, the journal failed) waits out a backoff that doubles from ``initialDelay`` up to
/// ``maximumDelay``. Meanwhile the reminder loop passes over it to the ones after it, so no number of
/// undeliverable reminders holds up a deliverable one, and each one is tried (and logged) once per step.
///
/// A value, kept by the reminder loop behind a lock: it decides, the loop reads the journal and delivers.
/// Times are nanoseconds on the monotonic clock.
struct ReminderRetries {
    /// One reminder as set: setting it again (another due time) makes another key, with a fresh backoff.
    struct Key: Hashable, Sendable {
        var actor: ActorID
        var name: String
        var due: Int64

        init(_ reminder: Reminder) {
            actor = reminder.actor
            name = reminder.name
            due = reminder.due
        }
    }

    /// The backoff of a reminder that failed.
    struct Backoff: Equatable {
        /// Failed attempts so far.
        var failures: Int
        /// The wait after the last failure.
        var delay: UInt64
        /// No attempt before this time.
        var notBefore: UInt64
        /// Whether the reminder was still found due since the last pass over the journal ended.
        var seen: Bool
    }

    /// The wait after the first failure: 100 ms.
    static let initialDelay: UInt64 = 100_000_000
    /// The longest wait: one minute.
    static let maximumDelay: UInt64 = 60_000_000_000

    /// Reminders that failed, until they are delivered or gone.
    private(set) var backoffs: [Key: Backoff] = [:]
    /// Reminders being delivered now, so that a slow one is not started twice.
    private(set) var inFlight: Set<Key> = []

    /// Whether to try `key` now: it is not being delivered and waits out no backoff. If so, it is in flight
    /// until ``finish(_:delivered:at:)``.
    mutating func begin(_ key: Key, at now: UInt64) -> Bool {
        guard !inFlight.contains(key) else { return false }
        if let backoff = backoffs[key] {
            backoffs[key]?.seen = true
            guard now >= backoff.notBefore else { return false }
        }
        inFlight.insert(key)
        return true
    }

    /// Records the end of an attempt. A delivered reminder is forgotten; for one that failed, returns its
    /// backoff (the failure count and the wait before the next attempt).
    @discardableResult
    mutating func finish(_ key: Key, delivered: Bool, at now: UInt64) -> Backoff? {
        inFlight.remove(key)
        guard !delivered else {
            backoffs[key] = nil
            return nil
        }
        var backoff =
            backoffs[key] ?? Backoff(failures: 0, delay: 0, notBefore: 0, seen: true)
        backoff.failures += 1
        backoff.delay =
            backoff.delay == 0
            ? Self.initialDelay : min(Self.maximumDelay, backoff.delay.multipliedReportingOverflow(by: 2).partialValue)
        backoff.notBefore = now &+ backoff.delay
        backoff.seen = true
        backoffs[key] = backoff
        return backoff
    }

    /// Ends a pass over every due reminder: forgets the backoffs of reminders not found since the last pass
    /// ended (delivered on another node, cancelled, set again or handed away), so the table stays as large as
    /// what is undeliverable.
    mutating func endPass() {
        backoffs = backoffs.filter { $0.value.seen || inFlight.contains($0.key) }
        for key in backoffs.keys { backoffs[key]?.seen = false }
    }
}
