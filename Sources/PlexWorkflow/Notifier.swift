internal import Synchronization

/// Wakes an executor waiting for something to change in its instance (an event delivered, a cancellation
/// requested). A waiter reads ``generation``, checks the state, and waits for a later generation, so a change
/// that happens between its check and its wait is not missed.
final class Notifier: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
        /// Waiters whose deadline passed (or whose task was cancelled) before they were registered.
        var expired: Set<UInt64> = []
    }

    private let state = Mutex(State())

    /// The number of changes so far.
    var generation: UInt64 { state.withLock { $0.generation } }

    /// Something changed: every waiter wakes.
    func notify() {
        let waiters = state.withLock { state in
            state.generation &+= 1
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the generation is past `seen`, `deadline` (on `clock`) has passed, or the task is cancelled.
    /// One continuation, and one timer task only when there is a deadline (no task group: a suspended instance
    /// should cost little).
    func wait(after seen: UInt64, until deadline: Int64?, clock: any WorkflowClock) async {
        let id = state.withLock { state in
            defer { state.nextWaiter &+= 1 }
            return state.nextWaiter
        }
        let timer = deadline.map { deadline in
            Task { [self] in
                guard (try? await clock.sleep(until: deadline)) != nil else { return }
                expire(id)
            }
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let now = state.withLock { state -> Bool in
                    if state.generation != seen || Task.isCancelled || state.expired.remove(id) != nil { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            expire(id)
        }
        timer?.cancel()
        await timer?.value  // so a timer that fired cannot mark the id after the cleanup below
        state.withLock { _ = $0.expired.remove(id) }
    }

    /// Wakes waiter `id`, or marks it so it does not wait once it registers.
    private func expire(_ id: UInt64) {
        let waiter = state.withLock { state in
            guard let waiter = state.waiters.removeValue(forKey: id) else {
                state.expired.insert(id)
                return nil as CheckedContinuation<Void, Never>?
            }
            return waiter
        }
        waiter?.resume()
    }
}
