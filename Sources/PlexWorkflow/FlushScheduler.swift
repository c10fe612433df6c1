internal import Synchronization

/// Writes the steps an executor holds back (see ``WorkflowExecutor/batchWindow``) once their window passes
/// while an activity attempt still runs: one timer for all the executors of an engine, set only while some
/// attempt is watched, instead of a task per attempt.
///
/// An attempt that ends before its due time is unwatched and costs two lock turns; a fast attempt (the usual
/// case) never touches a timer. A due is the oldest held-back step's time plus the window, so it is at most
/// one window ahead: the timer never sleeps longer than a window (a due added meanwhile waits at most that
/// long, and a wall clock set back does not hold every flush for as long as it went back). Flushes run as
/// tasks of their own: one that waits (its instance's owner is slow to answer) holds back no other.
final class FlushScheduler: Sendable {
    private struct Watch {
        let due: Int64
        let executor: WorkflowExecutor
    }

    private struct State {
        var watches: [UInt64: Watch] = [:]
        var nextToken: UInt64 = 0
        /// Whether the timer task runs (it ends once nothing is watched).
        var running = false
    }

    private let state = Mutex(State())
    private let clock: any WorkflowClock
    /// The batch window (milliseconds): the longest the timer sleeps at a time.
    private let window: Int64

    init(clock: any WorkflowClock, window: Int64) {
        self.clock = clock
        self.window = max(1, window)
    }

    /// Flushes `executor` at `due` unless ``unwatch(_:)`` is called with the returned token first.
    func watch(_ executor: WorkflowExecutor, due: Int64) -> UInt64 {
        let (token, start) = state.withLock { state in
            state.nextToken &+= 1
            state.watches[state.nextToken] = Watch(due: due, executor: executor)
            defer { state.running = true }
            return (state.nextToken, !state.running)
        }
        // Not owned by any one instance: it outlives the attempt that started it and ends once nothing is
        // watched (at most one window after the last attempt).
        if start { Task { await self.drain() } }
        return token
    }

    /// The attempt ended: its steps wait for the code's next write.
    func unwatch(_ token: UInt64) {
        _ = state.withLock { $0.watches.removeValue(forKey: token) }
    }

    /// Waits for the earliest due, flushes what is due, and goes on while anything is watched.
    private func drain() async {
        while true {
            let next = state.withLock { state -> Int64? in
                guard let earliest = state.watches.values.lazy.map(\.due).min() else {
                    state.running = false
                    return nil
                }
                return earliest
            }
            guard let next else { return }
            try? await clock.sleep(until: min(next, clock.now() + window))
            let now = clock.now()
            let due = state.withLock { state in
                // A due more than a window ahead means the clock was set back: flushed now (early is harmless).
                let due = state.watches.filter { $0.value.due <= now || $0.value.due > now + window }
                for token in due.keys { state.watches[token] = nil }
                return due.values.map(\.executor)
            }
            // Not awaited: each write waits for its own instance's turn.
            for executor in due { Task { try? await executor.flush() } }
        }
    }
}
