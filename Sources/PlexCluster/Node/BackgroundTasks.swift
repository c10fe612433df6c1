internal import Synchronization

/// Tasks a node started and owns: its loops, and work it starts from callbacks (a reconnect, a forwarded
/// call, a handoff round, a reminder delivery, an eviction, an admin command). Actors' turns are counted
/// apart (``TurnTasks``): they are many, and cheaper to count than to list.
///
/// Every task started here is awaited by ``cancelAndWait()``, which ``PlexNode`` calls when it stops, so once
/// `stop` returns nothing the node started still runs. It is the contract of a task group; a group cannot be
/// used directly because this work starts from synchronous transport callbacks, and feeding a group through a
/// stream would add two thread hops to every forwarded call.
///
/// A task that stops the node itself (an operator's `plex node stop`, a node that learns it was removed)
/// is not waited for by the stop it runs: it would wait for itself.
final class BackgroundTasks: Sendable {
    private struct State {
        /// Whether new work may start.
        var open = true
        var next: UInt64 = 0
        var running: [UInt64: Task<Void, Never>] = [:]
    }

    /// The task started here that the current code runs in (inherited by its child tasks).
    @TaskLocal private static var current: Current?

    private struct Current: Sendable {
        var owner: ObjectIdentifier
        var id: UInt64
    }

    private let state = Mutex(State())

    /// How many tasks run now.
    var count: Int { state.withLock { $0.running.count } }

    /// Starts `work` in a task owned here, on `executor` if given.
    /// - Returns: `false` (and `work` never runs) once ``close()`` was called.
    @discardableResult
    func start(on executor: (any TaskExecutor)? = nil, _ work: @escaping @Sendable () async -> Void) -> Bool {
        task(on: executor, work) != nil
    }

    /// Starts `work` in a task owned here, on `executor` if given, and returns the task (to cancel it alone).
    /// - Returns: `nil` (and `work` never runs) once ``close()`` was called.
    func task(
        on executor: (any TaskExecutor)? = nil, _ work: @escaping @Sendable () async -> Void
    ) -> Task<Void, Never>? {
        state.withLock { state in
            guard state.open else { return nil }
            let id = state.next
            state.next &+= 1
            // Registered under the lock: the task removes itself under the same lock, so always after this.
            let task = Task(executorPreference: executor) {
                await Self.$current.withValue(Current(owner: ObjectIdentifier(self), id: id)) { await work() }
                _ = self.state.withLock { $0.running.removeValue(forKey: id) }
            }
            state.running[id] = task
            return task
        }
    }

    /// Refuses new work from now on.
    func close() {
        state.withLock { $0.open = false }
    }

    /// Closes and cancels every task (the caller's own aside), without waiting for them.
    func cancelAll() {
        close()
        let mine = currentID
        for task in state.withLock({ $0.running.filter { $0.key != mine }.map(\.value) }) { task.cancel() }
    }

    /// The id of the task started here that the caller runs in, if any.
    private var currentID: UInt64? {
        Self.current.flatMap { $0.owner == ObjectIdentifier(self) ? $0.id : nil }
    }

    /// Closes, cancels every task and returns once all have ended; the task that calls this (if it is one of
    /// them) is neither cancelled nor waited for.
    func cancelAndWait() async {
        close()
        let mine = currentID
        while true {
            let tasks = state.withLock { $0.running.filter { $0.key != mine }.map(\.value) }
            guard !tasks.isEmpty else { return }
            for task in tasks { task.cancel() }
            for task in tasks { await task.value }
        }
    }
}
