internal import Synchronization

/// The tasks that run actors' turns (mailbox drains): one starts for most messages that arrive over the
/// network, so they are counted rather than listed (two atomic operations each, no lock).
///
/// When the node stops, ``stop()`` makes every drain that starts from then on start cancelled, the node
/// cancels the running ones through their mailboxes (``ActivationDirectory/cancelTurns()``), and
/// ``waitUntilNoneRuns()`` returns once none is left.
final class TurnTasks: Sendable {
    private let running = Atomic<Int>(0)
    private let stopping = Atomic<Bool>(false)
    private let idle = Mutex<[CheckedContinuation<Void, Never>]>([])

    /// How many turn tasks run now.
    var count: Int { running.load(ordering: .acquiring) }

    /// Starts `work` in a task on `executor` (if given); cancelled at once when the node stops.
    func task(
        on executor: (any TaskExecutor)? = nil, _ work: @escaping @Sendable () async -> Void
    ) -> Task<Void, Never> {
        begin()
        let task = Task(executorPreference: executor) {
            await work()
            self.end()
        }
        if isStopping { task.cancel() }
        return task
    }

    /// Counts a turn task that is about to start; the task calls ``end()`` when it is done. (A caller that
    /// makes its own task saves a closure per task; ``isStopping`` says whether to cancel it at once.)
    @inline(__always)
    func begin() {
        running.add(1, ordering: .acquiringAndReleasing)
    }

    /// A turn task is done.
    func end() {
        guard running.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 else { return }
        let waiters = idle.withLock { waiters in
            defer { waiters = [] }
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Whether the node stops: a turn task that starts now must be cancelled at once.
    var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// From now on every turn task starts cancelled.
    func stop() {
        stopping.store(true, ordering: .releasing)
    }

    /// Returns once no turn task runs.
    func waitUntilNoneRuns() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let none = idle.withLock { waiters -> Bool in
                guard running.load(ordering: .acquiring) > 0 else { return true }
                waiters.append(continuation)
                return false
            }
            if none { continuation.resume() }
        }
    }
}
