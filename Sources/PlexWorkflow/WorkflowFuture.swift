internal import PlexCore
internal import Synchronization

/// A step started without waiting for it: an activity (``WorkflowContext/startActivity(_:_:retry:)``), a
/// timer (``WorkflowContext/startTimer(for:)``) or a child workflow (``WorkflowContext/startChild(_:id:input:)``).
///
/// Its position in the history is taken when it starts, in the order the code starts steps, so concurrent
/// steps replay deterministically however their results interleave. Await it with ``value()``, several with
/// ``WorkflowContext/all(_:)``, or race them with ``WorkflowContext/first(_:)``.
public struct WorkflowFuture<Value: Sendable>: AnyWorkflowFuture {
    /// The step's position in the history.
    public let position: Int
    let task: Task<[UInt8], any Error>
    let decode: @Sendable ([UInt8]) throws -> Value

    /// Waits for the step and returns its result (or throws how it failed; a step that lost a
    /// ``WorkflowContext/first(_:)`` race throws ``WorkflowError`` `cancelled`).
    public func value() async throws -> Value {
        try decode(try await task.value)
    }

    /// The step without its result type.
    public var step: StartedStep { StartedStep(position: position, task: task) }
}

/// A ``WorkflowFuture`` of any result type, for ``WorkflowContext/first(_:)``.
public protocol AnyWorkflowFuture: Sendable {
    /// The step without its result type.
    var step: StartedStep { get }
}

/// A started step without its result type.
public struct StartedStep: Sendable {
    let position: Int
    let task: Task<[UInt8], any Error>
}

extension WorkflowContext {
    /// Starts registered activity `A` without waiting for it (see ``activity(_:_:retry:)``).
    public func startActivity<A: Activity>(_ type: A.Type, _ input: A.Input, retry: RetryPolicy? = nil) throws
        -> WorkflowFuture<A.Output>
    {
        let policy = retry ?? A.retryPolicy
        return try startActivity(
            A.name, retry: policy, as: A.Output.self, attempt: try attempt(A.self, input, policy: policy))
    }

    /// Starts `body` as an activity named `name` without waiting for it (see ``run(_:retry:_:)``).
    public func startRun<T: Codable & Sendable>(
        _ name: String, retry: RetryPolicy = .default, _ body: @escaping @Sendable (ActivityContext) async throws -> T
    ) throws -> WorkflowFuture<T> {
        try startActivity(name, retry: retry, as: T.self) { context in
            try BinaryMessageCodec().encode(try await body(context))
        }
    }

    private func startActivity<T: Codable & Sendable>(
        _ name: String, retry: RetryPolicy, as type: T.Type,
        attempt body: @escaping @Sendable (ActivityContext) async throws -> [UInt8]
    ) throws -> WorkflowFuture<T> {
        try retry.validate()
        let (position, recorded) = try executor.claim(.activity, name)
        let task = executor.startFuture(at: position) { [self] in
            try await perform(position, recorded, name, retry: retry, attempt: body)
        }
        return WorkflowFuture(position: position, task: task) { try BinaryMessageCodec().decode(T.self, from: $0) }
    }

    /// Starts a durable timer of `duration` without waiting for it (a deadline to race steps against with
    /// ``first(_:)``).
    public func startTimer(for duration: Duration) throws -> WorkflowFuture<Void> {
        let due = executor.clock.now() + duration.milliseconds
        let (position, recorded) = try executor.claim(.timer, "sleep")
        let task = executor.startFuture(at: position) { [self] in
            try await sleep(position, recorded, until: due)
            return []
        }
        return WorkflowFuture(position: position, task: task) { _ in () }
    }

    /// Waits for every step in `futures` and returns their results in the order given (the first failure in
    /// that order is thrown).
    public func all<T>(_ futures: [WorkflowFuture<T>]) async throws -> [T] {
        var results: [T] = []
        for future in futures { results.append(try await future.value()) }
        return results
    }

    /// Waits until one of `futures` finishes (with a result or an error), cancels the others, and returns the
    /// index of the one that finished. The choice is journaled, so a replay picks the same one; when several
    /// have finished already, the first in the order given wins. A cancelled step is recorded as cancelled:
    /// its activity is not retried, its timer is dropped, its child workflow is asked to cancel.
    ///
    /// ```swift
    /// let reply = try context.startActivity(AskSupplier.self, order)
    /// let deadline = try context.startTimer(for: .hours(1))
    /// if try await context.first(reply, deadline) == 0 { try await use(reply.value()) } else { escalate() }
    /// ```
    public func first(_ futures: any AnyWorkflowFuture...) async throws -> Int {
        try await first(futures)
    }

    /// Waits until one of `futures` finishes (see ``first(_:)-(AnyWorkflowFuture...)``).
    public func first(_ futures: [any AnyWorkflowFuture]) async throws -> Int {
        guard !futures.isEmpty else { throw WorkflowError(.invalidArgument, "first(_:) needs at least one step") }
        let (position, recorded) = try executor.claim(.value, "first")
        if case .value(let bytes)? = recorded?.outcome {
            let winner = try recordedWinner(bytes, position: position, of: futures.count)
            // Asked again on every replay, in case the node died before the losing children heard it.
            cancel(executor.children(at: losers(of: futures, winner: winner)))
            return winner
        }
        let chosen: Int
        if let resolved = executor.lowestResolved(futures.map(\.step.position)) {
            chosen = resolved
        } else {
            chosen = await Self.race(futures.map(\.step.task))
        }
        let now = executor.clock.now()
        let marker = WorkflowStep(
            position: position, kind: .value, name: "first", outcome: .value(try BinaryMessageCodec().encode(chosen)),
            startedAt: now, completedAt: now)
        // The winner and the losers' cancellation are journaled together before any loser is cancelled.
        let settled = try await executor.settleRace(losers: losers(of: futures, winner: chosen), marker: marker)
        for task in settled.tasks { task.cancel() }
        cancel(settled.children)
        guard case .value(let bytes)? = settled.marker.outcome else { return chosen }
        return try recordedWinner(bytes, position: position, of: futures.count)
    }

    private func losers(of futures: [any AnyWorkflowFuture], winner: Int) -> [Int] {
        futures.indices.filter { $0 != winner }.map { futures[$0].step.position }
    }

    private func recordedWinner(_ bytes: [UInt8], position: Int, of count: Int) throws -> Int {
        let winner = try BinaryMessageCodec().decode(Int.self, from: bytes)
        guard (0..<count).contains(winner) else {
            throw executor.breakWith(
                WorkflowError(
                    .nonDeterminism, "step \(position): the history holds the winner \(winner) of a race of \(count)"))
        }
        return winner
    }

    /// Asks the children `ids` to cancel, in the background.
    private func cancel(_ ids: [String]) {
        guard !ids.isEmpty else { return }
        let driver = executor.driver
        Task { for id in ids { try? await driver.cancelChild(id: id) } }
    }

    /// The index of the first of `tasks` to finish.
    private static func race(_ tasks: [Task<[UInt8], any Error>]) async -> Int {
        let box = RaceBox()
        return await withCheckedContinuation { continuation in
            box.set(continuation)
            for (index, task) in tasks.enumerated() {
                Task {
                    _ = try? await task.value
                    box.finish(index)
                }
            }
        }
    }
}

/// The continuation of a race, resumed once.
private final class RaceBox: Sendable {
    private let continuation = Mutex<CheckedContinuation<Int, Never>?>(nil)

    func set(_ continuation: CheckedContinuation<Int, Never>) {
        self.continuation.withLock { $0 = continuation }
    }

    func finish(_ index: Int) {
        continuation.withLock { $0.take() }?.resume(returning: index)
    }
}
