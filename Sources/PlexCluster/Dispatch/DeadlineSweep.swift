internal import NIOCore
internal import NIOPosix
internal import PlexWire
internal import Synchronization

/// A call waiting for its answer that its deadline may cut short (``DeadlineSweep``).
protocol DeadlineWaiter: AnyObject, Sendable {
    /// Whether it has its answer already (then it needs no timeout).
    var isAnswered: Bool { get }
    /// Its deadline passed: gives it the timeout, unless it was answered meanwhile.
    func expire()
}

/// Gives waiting calls their timeouts: one sweep every ``resolution`` over the calls that wait with a deadline,
/// instead of a NIO timer per call. Scheduling and cancelling a timer for every call (a heap insertion and
/// removal on the loop, two futures) cost about 5 % of a gateway request; adding to the sweep is an append under
/// a lock, and a call answered before the next sweep is dropped by it.
///
/// A timeout is given up to ``resolution`` after its deadline. The sweep runs only while calls wait.
final class DeadlineSweep: Sendable {
    /// How late a timeout may come.
    static let resolution = TimeAmount.milliseconds(5)

    private struct Waiting {
        let deadline: UInt64
        let waiter: any DeadlineWaiter
    }

    private struct State {
        var waiting: [Waiting] = []
        /// Whether a sweep is scheduled (there is one while anything waits).
        var scheduled = false
    }

    private let state = Mutex(State())
    private let loop: any EventLoop

    init(loop: any EventLoop = MultiThreadedEventLoopGroup.singleton.next()) {
        self.loop = loop
    }

    /// How many calls the sweep holds (answered ones until the next sweep drops them).
    var count: Int { state.withLock { $0.waiting.count } }

    /// Gives `waiter` its timeout once `deadline` passes, unless it is answered first. A deadline of
    /// ``Deadline/never`` is not held.
    func add(_ waiter: any DeadlineWaiter, deadline: Deadline) {
        guard deadline != .never else { return }
        let schedule = state.withLock { state in
            state.waiting.append(Waiting(deadline: deadline.uptimeNanoseconds, waiter: waiter))
            defer { state.scheduled = true }
            return !state.scheduled
        }
        if schedule { scheduleSweep() }
    }

    private func scheduleSweep() {
        loop.scheduleTask(in: Self.resolution) {
            if self.sweep(now: Deadline.now(), rescheduling: true) { self.scheduleSweep() }
        }
    }

    /// Drops the answered calls and times out those past `now` (the tests' way to sweep at a chosen time).
    func sweep(now: UInt64) {
        _ = sweep(now: now, rescheduling: false)
    }

    /// Returns whether to schedule the next sweep (only the scheduled sweep decides that).
    private func sweep(now: UInt64, rescheduling: Bool) -> Bool {
        let (expired, again) = state.withLock { state -> ([any DeadlineWaiter], Bool) in
            var expired: [any DeadlineWaiter] = []
            state.waiting.removeAll { waiting in
                if waiting.waiter.isAnswered { return true }
                guard waiting.deadline <= now else { return false }
                expired.append(waiting.waiter)
                return true
            }
            guard rescheduling else { return (expired, false) }
            state.scheduled = !state.waiting.isEmpty
            return (expired, state.scheduled)
        }
        for waiter in expired { waiter.expire() }
        return again
    }
}
