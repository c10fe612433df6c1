public import FoundationEssentials
public import Logging
internal import PlexCore

/// What a workflow's code reaches the world through. Every step it offers is journaled, so a replay after a
/// restart takes the same path: activities, timers, events, the clock, random numbers and UUIDs.
///
/// Steps are numbered in the order the code asks for them; ask for them one after another (not from
/// unstructured concurrent tasks), so the order is the same on every run.
public struct WorkflowContext: Sendable {
    let executor: WorkflowExecutor

    /// The instance's id.
    public var instanceID: String { executor.instanceID }

    /// Whether the code is re-running steps the history holds (after a restart or a handoff).
    public var isReplaying: Bool { executor.isReplaying }

    /// A logger that is silent while the code replays, so each line is written once.
    public var logger: Logger { executor.logger }

    // MARK: Activities

    /// Runs registered activity `A` with `input`, retrying failed attempts under `retry` (or the activity's
    /// ``Activity/retryPolicy``), and returns its result; a replay returns the journaled result without
    /// running it.
    ///
    /// - Throws: ``WorkflowError`` `activityFailed` (with the last attempt's ``WorkflowError/failure``) when
    ///   the policy gives up; `cancelled` when the instance is asked to cancel.
    public func activity<A: Activity>(_ type: A.Type, _ input: A.Input, retry: RetryPolicy? = nil)
        async throws -> A.Output
    {
        let policy = retry ?? A.retryPolicy
        let bytes = try await perform(A.name, retry: policy, attempt: try attempt(A.self, input, policy: policy))
        return try BinaryMessageCodec().decode(A.Output.self, from: bytes)
    }

    /// How one attempt of registered activity `A` runs: on this node, or on a worker node of its pool.
    func attempt<A: Activity>(_ type: A.Type, _ input: A.Input, policy: RetryPolicy) throws
        -> @Sendable (ActivityContext) async throws -> [UInt8]
    {
        if A.placement == .workerPool {
            let bytes = try BinaryMessageCodec().encode(input)
            let driver = executor.driver
            let timeout = policy.startToCloseTimeout ?? .seconds(300)
            return { context in try await driver.runOnWorker(input: bytes, context: context, timeout: timeout) }
        }
        let registry = executor.activities
        return { context in
            guard let activity = registry.activity(named: A.name) as? A else {
                throw WorkflowError(.unknownActivity, "activity '\(A.name)' is not registered on this node")
            }
            return try BinaryMessageCodec().encode(try await activity.run(input, context: context))
        }
    }

    /// Runs `body` as an activity named `name`, with retries under `retry`; a replay returns the journaled
    /// result without running it. The name is part of the history: keep it stable.
    public func run<T: Codable & Sendable>(
        _ name: String, retry: RetryPolicy = .default, _ body: @escaping @Sendable (ActivityContext) async throws -> T
    ) async throws -> T {
        let bytes = try await perform(name, retry: retry) { context in
            try BinaryMessageCodec().encode(try await body(context))
        }
        return try BinaryMessageCodec().decode(T.self, from: bytes)
    }

    /// Registers an undo step, run (last registered first) if the workflow fails or is cancelled: the saga
    /// pattern. Call it after the step it undoes completed; it may run activities itself.
    public func addCompensation(_ undo: @escaping @Sendable () async throws -> Void) {
        executor.addCompensation(undo)
    }

    private func perform(
        _ name: String, retry policy: RetryPolicy,
        attempt body: @escaping @Sendable (ActivityContext) async throws -> [UInt8]
    ) async throws -> [UInt8] {
        try policy.validate()
        let (position, recorded) = try executor.claim(.activity, name)
        return try await perform(position, recorded, name, retry: policy, attempt: body)
    }

    /// Runs (or replays) the activity claimed at `position`.
    func perform(
        _ position: Int, _ recorded: WorkflowStep?, _ name: String, retry policy: RetryPolicy,
        attempt body: @escaping @Sendable (ActivityContext) async throws -> [UInt8]
    ) async throws -> [UInt8] {
        let clock = executor.clock
        var step = recorded ?? WorkflowStep(position: position, kind: .activity, name: name, startedAt: clock.now())
        while true {
            switch step.outcome {
            case .value(let bytes)?: return bytes
            case .failure(let failure)?:
                throw WorkflowError(
                    .activityFailed,
                    "activity '\(name)' failed after \(step.attempts) attempt(s): \(failure.message)", failure: failure)
            case .timedOut?: throw WorkflowError(.timedOut, "activity '\(name)' timed out")
            case nil: break
            }
            if let due = step.dueAt { try await executor.pause(until: due) }
            try executor.checkCancelRequest()
            let result = try await attemptOnce(step, body, timeout: policy.startToCloseTimeout)
            Self.resolve(&step, with: result, policy: policy, now: executor.clock.now(), retried: executor.retried)
            step = try await executor.record(step)
        }
    }

    // The attempt and what follows from it are functions of their own: an async function's frame holds every
    // local of its body, and the whole loop in one function took 3.5 KB, allocated for every activity.

    /// Runs the next attempt of `step`; its error is the result's, unless the task was cancelled.
    @inline(never)
    private func attemptOnce(
        _ step: WorkflowStep, _ body: @escaping @Sendable (ActivityContext) async throws -> [UInt8],
        timeout: Duration?
    ) async throws -> Result<[UInt8], any Error> {
        let executor = self.executor
        let clock = executor.clock
        let context = ActivityContext(
            instanceID: executor.instanceID, position: step.position, attempt: step.attempts + 1, name: step.name,
            run: executor.run)
        // Steps waiting to be journaled are written once their window passes, even while this attempt runs.
        let watch = executor.flushDue.map { executor.flushes.watch(executor, due: $0) }
        defer { if let watch { executor.flushes.unwatch(watch) } }
        do {
            return .success(
                try await executor.attempting {
                    try await executor.traced(context) {
                        try await Self.attempt(body, context, timeout: timeout, clock: clock)
                    }
                })
        } catch {
            guard Task.isCancelled else { return .failure(error) }
            if executor.isAbandoned(step.position) { throw CancellationError() }
            throw executor.stop(because: "its task was cancelled")
        }
    }

    /// Counts the attempt that gave `result` and resolves `step` with it, or sets its next attempt's time.
    private static func resolve(
        _ step: inout WorkflowStep, with result: Result<[UInt8], any Error>, policy: RetryPolicy, now: Int64,
        retried: () -> Void
    ) {
        let attempt = step.attempts + 1
        step.attempts = attempt
        step.dueAt = nil
        switch result {
        case .success(let bytes):
            step.outcome = .value(bytes)
            step.completedAt = now
        case .failure(let error):
            let failure = EffectLog.Failure.activity(error)
            step.lastFailure = failure
            let delay = policy.delayMilliseconds(afterAttempt: attempt, unit: Double.random(in: 0..<1))
            let exhausted = policy.maximumAttempts.map { attempt >= $0 } ?? false
            let late = policy.overallTimeout.map { now + delay >= step.startedAt + $0.milliseconds } ?? false
            if !policy.isRetryable(failure) || exhausted || late {
                step.outcome = .failure(failure)
                step.completedAt = now
            } else {
                step.dueAt = now + delay
                retried()
            }
        }
    }

    /// One attempt, cancelled and failed with ``WorkflowError`` `timedOut` if it outlasts `timeout`.
    private static func attempt(
        _ body: @escaping @Sendable (ActivityContext) async throws -> [UInt8], _ context: ActivityContext,
        timeout: Duration?, clock: any WorkflowClock
    ) async throws -> [UInt8] {
        guard let timeout else { return try await body(context) }
        let deadline = clock.now() + timeout.milliseconds
        return try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
            group.addTask { try await body(context) }
            group.addTask {
                try await clock.sleep(until: deadline)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let bytes = first else {
                throw WorkflowError(
                    .timedOut, "attempt \(context.attempt) of activity '\(context.name)' ran longer than \(timeout)")
            }
            return bytes
        }
    }

    // MARK: Timers

    /// Waits for `duration` on a durable timer: its fire time is journaled when it is first set, so after a
    /// restart it fires at that time (not `duration` after the restart).
    public func sleep(for duration: Duration) async throws {
        try await sleep(untilMilliseconds: executor.clock.now() + duration.milliseconds)
    }

    /// Waits until `date` on a durable timer.
    public func sleep(until date: Date) async throws {
        try await sleep(untilMilliseconds: Int64((date.timeIntervalSince1970 * 1000).rounded(.up)))
    }

    private func sleep(untilMilliseconds due: Int64) async throws {
        let (position, recorded) = try executor.claim(.timer, "sleep")
        try await sleep(position, recorded, until: due)
    }

    /// Sets (or replays) the timer claimed at `position` and waits for it.
    func sleep(_ position: Int, _ recorded: WorkflowStep?, until due: Int64) async throws {
        let clock = executor.clock
        var step =
            recorded
            ?? WorkflowStep(position: position, kind: .timer, name: "sleep", startedAt: clock.now(), dueAt: due)
        if recorded == nil { step = try await executor.record(step) }
        guard !step.isResolved else { return }
        try await executor.pause(until: step.dueAt ?? due)
        step.outcome = .value([])
        step.completedAt = clock.now()
        _ = try await executor.record(step)
    }

    // MARK: Events

    /// Waits for the external event `name` (delivered with ``WorkflowHandle/signal(_:_:timeout:)``, or as JSON by
    /// `plex workflow signal`) and returns its payload, decoded from JSON; events that arrived earlier wait in
    /// the instance's inbox, oldest first.
    ///
    /// - Parameter timeout: How long to wait; the deadline is journaled when the wait starts, so a restart does
    ///   not extend it. `nil` waits for ever.
    /// - Returns: The payload, or `nil` when the timeout passed first.
    public func waitForEvent<T: Codable & Sendable>(_ name: String, as type: T.Type = T.self, timeout: Duration? = nil)
        async throws -> T?
    {
        let clock = executor.clock
        let (position, recorded) = try executor.claim(.event, name)
        var step =
            recorded
            ?? WorkflowStep(
                position: position, kind: .event, name: name, startedAt: clock.now(),
                dueAt: timeout.map { clock.now() + $0.milliseconds })
        if recorded == nil { step = try await executor.record(step) }
        while true {
            switch step.outcome {
            case .value(let bytes)?: return try JSONMessageCodec().decode(T.self, from: bytes)
            case .timedOut?: return nil
            case .failure(let failure)?: throw failure.error
            case nil: break
            }
            let seen = executor.driver.changes.generation
            try executor.checkCancelRequest()
            let reached = step.dueAt.map { clock.now() >= $0 } ?? false
            // Taking is journaled, looking is not: a wait that finds no event (a wake-up, a cancellation that
            // came to nothing, another event's arrival) writes nothing.
            var look = reached
            if !look { look = try await executor.hasEvent(name) }
            if look,
                let taken = try await executor.takeEvent(position: position, name: name, deadlineReached: reached)
            {
                step = taken
                continue
            }
            await executor.waiting(until: step.dueAt)
            await executor.waitForChange(after: seen, until: step.dueAt)
            try Task.checkCancellation()
        }
    }

    // MARK: Versioning

    /// The version of change `changeID` this instance runs, so code can change the sequence of its steps
    /// without breaking instances that started before (Temporal's `GetVersion`):
    ///
    /// ```swift
    /// if try await context.version("express-shipping", supported: 0...1) == 1 {
    ///     _ = try await context.activity(ExpressShip.self, order)   // new instances
    /// } else {
    ///     _ = try await context.activity(Ship.self, order)          // instances started before the change
    /// }
    /// ```
    ///
    /// An instance that reaches this point for the first time records `supported.upperBound` (a step in its
    /// history) and gets it on every replay; an instance whose history was written before the call existed gets
    /// 0 (and no step is taken). Once no running instance needs an old version, raise `supported.lowerBound`.
    /// - Throws: ``WorkflowError`` `nonDeterminism` (failing the instance) when its version is outside `supported`.
    public func version(_ changeID: String, supported: ClosedRange<Int>) async throws -> Int {
        switch try executor.claimVersion(changeID) {
        case .predates:
            return try check(0, changeID, supported)
        case .recorded(let step):
            guard case .value(let bytes)? = step.outcome else { return try check(0, changeID, supported) }
            return try check(try BinaryMessageCodec().decode(Int.self, from: bytes), changeID, supported)
        case .new(let position):
            let now = executor.clock.now()
            let step = WorkflowStep(
                position: position, kind: .value, name: "version:\(changeID)",
                outcome: .value(try BinaryMessageCodec().encode(supported.upperBound)), startedAt: now, completedAt: now
            )
            _ = try await executor.record(step)
            return supported.upperBound
        }
    }

    private func check(_ version: Int, _ changeID: String, _ supported: ClosedRange<Int>) throws -> Int {
        guard supported.contains(version) else {
            throw executor.breakWith(
                WorkflowError(
                    .nonDeterminism,
                    "change '\(changeID)': the instance runs version \(version), the code supports \(supported)"))
        }
        return version
    }

    // MARK: Recorded values

    /// The current time, journaled: a replay sees the same value.
    public func now() async throws -> Date {
        let milliseconds = try await value("now") { self.executor.clock.now() }
        return Date(timeIntervalSince1970: Double(milliseconds) / 1000)
    }

    /// A random integer in `range`, journaled.
    public func random(in range: ClosedRange<Int>) async throws -> Int {
        try await value("random") { Int.random(in: range) }
    }

    /// A random UUID, journaled.
    public func uuid() async throws -> UUID {
        try await value("uuid") { UUID() }
    }

    private func value<T: Codable & Sendable>(_ name: String, _ make: () -> T) async throws -> T {
        let (position, recorded) = try executor.claim(.value, name)
        if case .value(let bytes)? = recorded?.outcome { return try BinaryMessageCodec().decode(T.self, from: bytes) }
        let value = make()
        let now = executor.clock.now()
        let step = WorkflowStep(
            position: position, kind: .value, name: name, outcome: .value(try BinaryMessageCodec().encode(value)),
            startedAt: now, completedAt: now)
        let stored = try await executor.record(step)
        guard case .value(let bytes)? = stored.outcome else { return value }
        return try BinaryMessageCodec().decode(T.self, from: bytes)
    }
}
