internal import DequeModule
internal import Synchronization

/// The turn of one activation: at most one holder at a time, handed over in FIFO order.
///
/// A waiting caller (`acquire`) is resumed when its turn comes; a queued job (`enqueue`, for remote
/// calls and one-way messages) is run by a drain task, which keeps running queued jobs until the queue is
/// empty or the next in line is a waiting caller. An uncontended `acquire` takes a lock and returns: no
/// task, no suspension.
///
/// Messages are admitted against a limit (the node's ``ActivationConfiguration/maximumMailboxDepth``): at
/// most that many callers and jobs wait behind the turn's holder, and a message past it is refused at once,
/// so a slow actor under load holds a bounded number of messages. The node's own work (deactivation,
/// handoff) and a message already admitted once (re-run after a deactivation) are admitted without a limit.
final class Mailbox: Sendable {
    typealias Job = @Sendable () async -> Void

    /// What ``acquire(admitting:)`` and ``enqueue(_:admitting:on:)`` did with a message.
    enum Admission: Equatable {
        /// Admitted: the caller holds the turn (`acquire`), or the job runs in its turn (`enqueue`).
        case admitted
        /// Refused: `limit` messages already wait. `first` is true for the first refusal since the queue
        /// was last empty (so the node logs a full mailbox once, not once per message).
        case full(first: Bool)
    }

    private enum Waiter {
        /// Resumed exactly once (with `.admitted`), by whoever pops it from the queue under the lock.
        case caller(UnsafeContinuation<Admission, Never>)
        case job(Job)
    }

    private struct State {
        var busy = false
        /// The drain task running queued jobs, if one runs (to cancel the job in hand).
        var drain: Task<Void, Never>?
        /// Counts drains: a drain's task is kept only while its drain holds the turn.
        var drainEpoch: UInt64 = 0

        /// A new drain takes the turn; returns its epoch.
        mutating func beginDrain() -> UInt64 {
            drainEpoch &+= 1
            drain = nil
            return drainEpoch
        }

        /// The drain that held the turn gave it up (to a waiting caller, or the queue is empty).
        mutating func endDrain() {
            drainEpoch &+= 1
            drain = nil
        }
        var queue: Deque<Waiter> = []
        /// Whether a message was refused since the queue was last empty.
        var refusing = false

        /// Refuses a message if `limit` already wait; notes the first refusal.
        mutating func refusal(limit: Int) -> Admission? {
            guard queue.count >= limit else { return nil }
            defer { refusing = true }
            return .full(first: !refusing)
        }
    }

    private let state = Mutex(State())
    /// Counts the drain tasks, so a node that stops cancels and awaits them.
    private let turns: TurnTasks

    /// - Parameter turns: Counts the drain tasks (the node's ``NodeRuntime/turns``).
    init(turns: TurnTasks) {
        self.turns = turns
    }

    /// How many callers and jobs wait for the turn (for tests and diagnostics).
    var waiting: Int { state.withLock { $0.queue.count } }

    /// Whether nobody holds the turn or waits for it (right now: a caller may come the next moment).
    var isIdle: Bool { state.withLock { !$0.busy && $0.queue.isEmpty } }

    /// Waits for the turn, however many wait before it (the node's own work). The caller must call
    /// ``release()`` when done.
    func acquire() async {
        _ = await acquire(admitting: .max)
    }

    /// Waits for the turn unless `limit` callers and jobs already wait for it.
    ///
    /// - Returns: ``Admission/admitted`` once the caller holds the turn (it must call ``release()``), or
    ///   ``Admission/full(first:)`` at once, without the turn.
    func acquire(admitting limit: Int) async -> Admission {
        let immediate = state.withLock { state -> Admission? in
            if !state.busy {
                state.busy = true
                return .admitted
            }
            return state.refusal(limit: limit)
        }
        if let immediate { return immediate }
        return await withUnsafeContinuation { continuation in
            let immediate = state.withLock { state -> Admission? in
                if !state.busy {
                    state.busy = true
                    return .admitted
                }
                if let refused = state.refusal(limit: limit) { return refused }
                state.queue.append(.caller(continuation))
                return nil
            }
            if let immediate { continuation.resume(returning: immediate) }
        }
    }

    /// Runs `job` in its turn, after everything queued before it, unless `limit` callers and jobs already
    /// wait. Returns at once.
    ///
    /// - Parameters:
    ///   - limit: How many may wait before this job is refused; `.max` for the node's own work.
    ///   - executor: Where the drain task runs if this job starts one (the connection's loop for
    ///     remote calls); `nil` for the global pool.
    /// - Returns: Whether the job was admitted; a refused job never runs.
    @discardableResult
    func enqueue(_ job: @escaping Job, admitting limit: Int = .max, on executor: (any TaskExecutor)? = nil)
        -> Admission
    {
        let (admission, epoch) = state.withLock { state -> (Admission, UInt64?) in
            guard state.busy else {
                state.busy = true
                return (.admitted, state.beginDrain())
            }
            if let refused = state.refusal(limit: limit) { return (refused, nil) }
            state.queue.append(.job(job))
            return (.admitted, nil)
        }
        if let epoch { drain(startingWith: job, on: executor, epoch: epoch) }
        return admission
    }

    /// Ends the current turn and hands it to the next in line.
    func release() {
        if let job = handOff() {
            // The turn leaves its caller for a new drain task.
            drain(startingWith: job, on: nil, epoch: state.withLock { $0.beginDrain() })
        }
    }

    /// The next queued job if the turn stays with the drain task; resumes a waiting caller instead.
    private func handOff() -> Job? {
        let next = state.withLock { state -> Waiter? in
            guard let next = state.queue.popFirst() else {
                state.busy = false
                state.refusing = false
                state.endDrain()
                return nil
            }
            if case .caller = next { state.endDrain() }  // the turn leaves the drain task
            return next
        }
        switch next {
        case nil: return nil
        case .caller(let continuation):
            continuation.resume(returning: .admitted)
            return nil
        case .job(let job): return job
        }
    }

    private func drain(startingWith first: @escaping Job, on executor: (any TaskExecutor)?, epoch: UInt64) {
        turns.begin()
        let task = Task(executorPreference: executor) {
            defer { self.turns.end() }
            var job: Job? = first
            while let current = job {
                await current()
                job = self.handOff()
                if let next = job, Task.isCancelled {
                    // The job in hand was cancelled (``cancelJobInHand()``), and a task stays cancelled: the
                    // next job gets a task of its own. (When the node stops, that one starts cancelled too.)
                    return self.drain(
                        startingWith: next, on: executor, epoch: self.state.withLock { $0.beginDrain() })
                }
            }
        }
        if turns.isStopping { task.cancel() }
        // Kept only while this drain holds the turn: one that ended (or handed the turn on) already is not.
        state.withLock { state in
            if state.drainEpoch == epoch { state.drain = task }
        }
    }

    /// Cancels the task of the queued job that holds the turn now (cooperatively: its handler sees it as
    /// task cancellation). The caller makes sure that job still holds the turn; the jobs after it run in a
    /// new task. A turn held by a waiting caller (``acquire(admitting:)``) is not affected: its caller
    /// cancels its own task.
    func cancelJobInHand() {
        state.withLock { $0.drain }?.cancel()
    }
}
