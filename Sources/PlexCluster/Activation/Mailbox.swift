internal import DequeModule
internal import Synchronization

/// The turn of one activation: at most one holder at a time, handed over in FIFO order.
///
/// A waiting caller (`acquire`) is resumed when its turn comes; a queued job (`enqueue`, for remote
/// calls and one-way messages) is run by a drain task, which keeps running queued jobs until the queue is
/// empty or the next in line is a waiting caller. An uncontended `acquire` takes a lock and returns: no
/// task, no suspension.
final class Mailbox: Sendable {
    typealias Job = @Sendable () async -> Void

    private enum Waiter {
        /// Resumed exactly once, by whoever pops it from the queue under the lock.
        case caller(UnsafeContinuation<Void, Never>)
        case job(Job)
    }

    private struct State {
        var busy = false
        var queue: Deque<Waiter> = []
    }

    private let state = Mutex(State())

    /// How many callers and jobs wait for the turn (for tests and diagnostics).
    var waiting: Int { state.withLock { $0.queue.count } }

    /// Waits for the turn. The caller must call ``release()`` when done.
    func acquire() async {
        let acquired = state.withLock { state -> Bool in
            if state.busy { return false }
            state.busy = true
            return true
        }
        if acquired { return }
        await withUnsafeContinuation { continuation in
            let acquiredNow = state.withLock { state -> Bool in
                if !state.busy {
                    state.busy = true
                    return true
                }
                state.queue.append(.caller(continuation))
                return false
            }
            if acquiredNow { continuation.resume() }
        }
    }

    /// Runs `job` in its turn, after everything queued before it. Returns at once.
    ///
    /// - Parameter executor: Where the drain task runs if this job starts one (the connection's loop for
    ///   remote calls); `nil` for the global pool.
    func enqueue(_ job: @escaping Job, on executor: (any TaskExecutor)? = nil) {
        let runNow = state.withLock { state -> Bool in
            if state.busy {
                state.queue.append(.job(job))
                return false
            }
            state.busy = true
            return true
        }
        if runNow { drain(startingWith: job, on: executor) }
    }

    /// Ends the current turn and hands it to the next in line.
    func release() {
        if let job = handOff() { drain(startingWith: job, on: nil) }
    }

    /// The next queued job if the turn stays with the drain task; resumes a waiting caller instead.
    private func handOff() -> Job? {
        let next = state.withLock { state -> Waiter? in
            guard let next = state.queue.popFirst() else {
                state.busy = false
                return nil
            }
            return next
        }
        switch next {
        case nil: return nil
        case .caller(let continuation):
            continuation.resume()
            return nil
        case .job(let job): return job
        }
    }

    private func drain(startingWith first: @escaping Job, on executor: (any TaskExecutor)?) {
        Task(executorPreference: executor) {
            var job: Job? = first
            while let current = job {
                await current()
                job = self.handOff()
            }
        }
    }
}
