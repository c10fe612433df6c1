internal import Logging
internal import PlexCore
internal import Synchronization

/// Runs one instance's workflow code: replays the steps its history holds and performs the new ones.
///
/// The code runs from the start each time an executor starts (after a restart, a handoff or a deactivation).
/// Each step it asks for gets the next position; a position the history holds returns the recorded outcome
/// (or resumes a pending step at its journaled state: a retry or a timer keeps its journaled due time), and a
/// new one runs and is recorded through the driver: a completed activity or recorded value within
/// ``batchWindow`` together with the steps after it, anything else before the code goes on. Once a driver write fails or the
/// task is cancelled, the executor stops: every later step throws and nothing more is recorded, so code that
/// catches the error cannot take a path that replay would not take.
final class WorkflowExecutor: Sendable {
    /// Thrown to the workflow code when the executor stopped (its task was cancelled or a write failed).
    struct Stopped: Error, CustomStringConvertible {
        let reason: String
        var description: String { "the workflow executor stopped: \(reason)" }
    }

    fileprivate struct State {
        var history: [WorkflowStep]
        var next = 0
        /// Why the executor stopped, or the non-determinism it found: every later step throws it.
        var broken: (any Error)?
        var compensations: [@Sendable () async throws -> Void] = []
        /// Whether the code is running compensations (a cancellation request no longer interrupts it).
        var compensating = false
        /// The step the code is on, for status.
        var current: String?
        /// Resolved steps applied to the history here and not yet written (see ``batchWindow``), oldest first.
        var unflushed: [WorkflowStep] = []
        /// When the oldest of them was taken.
        var oldestUnflushed: Int64?
    }

    let driver: any WorkflowDriver
    let clock: any WorkflowClock
    let activities: ActivityRegistry
    let baseLogger: Logger
    /// How long (milliseconds) a completed activity or recorded value may wait to be written with the steps
    /// after it, so a run of fast steps costs one journal entry; 0 writes each before the code goes on.
    let batchWindow: Int64
    private let state: Mutex<State>

    init(
        driver: any WorkflowDriver, history: [WorkflowStep], clock: any WorkflowClock, activities: ActivityRegistry,
        logger: Logger, batchWindow: Int64 = 0
    ) {
        self.driver = driver
        self.clock = clock
        self.activities = activities
        self.baseLogger = logger
        self.batchWindow = batchWindow
        self.state = Mutex(State(history: history))
    }

    var instanceID: String { driver.instanceID }

    /// Whether the code is re-running steps the history holds.
    var isReplaying: Bool { state.withLock { $0.next < $0.history.count } }

    /// The step the code waits on, for status.
    var currentStep: String? { state.withLock { $0.current } }

    // MARK: Running the code

    /// Runs `body` to its end and records how it ended, unless the executor stopped first.
    func run(_ body: @Sendable (WorkflowContext) async throws -> [UInt8]) async {
        let context = WorkflowContext(executor: self)
        let ending: WorkflowRecord.Ending
        do {
            ending = .completed(try await body(context))
        } catch {
            guard let settled = await settle(error) else { return }
            ending = settled
        }
        // A non-determinism the code caught still fails the instance.
        let found = state.withLock { $0.broken }
        let steps = takeUnflushed()
        if let found = found as? WorkflowError, found.code == .nonDeterminism {
            try? await driver.finish(.failed(EffectLog.Failure(found)), steps: steps, now: clock.now())
            return
        }
        guard found == nil, !Task.isCancelled else { return }
        try? await driver.finish(ending, steps: steps, now: clock.now())
    }

    /// How the instance ends after `error`, compensations run; `nil` when the executor stopped.
    private func settle(_ error: any Error) async -> WorkflowRecord.Ending? {
        let broken = state.withLock { $0.broken }
        if let broken = broken as? WorkflowError, broken.code == .nonDeterminism {
            return .failed(EffectLog.Failure(broken))
        }
        if broken != nil || Task.isCancelled || error is CancellationError { return nil }
        await compensate()
        if state.withLock({ $0.broken }) != nil || Task.isCancelled { return nil }
        if let error = error as? WorkflowError, error.code == .cancelled, driver.cancelRequested { return .cancelled }
        return .failed(EffectLog.Failure(error))
    }

    /// Runs the registered compensations, last first; one that fails is logged and the rest still run.
    private func compensate() async {
        let steps = state.withLock { state in
            state.compensating = true
            defer { state.compensations = [] }
            return state.compensations
        }
        for step in steps.reversed() {
            do {
                try await step()
            } catch {
                if state.withLock({ $0.broken }) != nil || Task.isCancelled { return }
                logger.warning(
                    "a compensation step failed; the others still run",
                    metadata: ["workflow.id": "\(instanceID)", "error": "\(error)"])
            }
        }
    }

    func addCompensation(_ step: @escaping @Sendable () async throws -> Void) {
        state.withLock { $0.compensations.append(step) }
    }

    /// The logger, silent while the code replays.
    var logger: Logger {
        isReplaying ? Logger(label: baseLogger.label, factory: { _ in SwiftLogNoOpLogHandler() }) : baseLogger
    }

    // MARK: Steps

    /// Claims the next position for a step of `kind` named `name`: its recorded state, if the history has it.
    /// - Throws: what stopped the executor, a cancellation request, or ``WorkflowError`` `nonDeterminism`.
    func claim(_ kind: WorkflowStep.Kind, _ name: String) throws -> (position: Int, recorded: WorkflowStep?) {
        try Task.checkCancellation()
        let cancelRequested = driver.cancelRequested
        return try state.withLock { state throws -> (Int, WorkflowStep?) in
            if let broken = state.broken { throw broken }
            if cancelRequested && !state.compensating {
                throw WorkflowError(.cancelled, "the instance was asked to cancel")
            }
            let position = state.next
            state.next += 1
            state.current = "\(kind.rawValue) '\(name)' (step \(position))"
            guard position < state.history.count else { return (position, nil) }
            let recorded = state.history[position]
            guard recorded.kind == kind, recorded.name == name else {
                let error = WorkflowError(
                    .nonDeterminism,
                    "step \(position): the history holds \(recorded.label), the code asked for \(kind.rawValue) '\(name)'"
                )
                state.broken = error
                throw error
            }
            return (position, recorded)
        }
    }

    /// What the history holds where the code asks for the version of change `changeID`.
    enum VersionClaim {
        /// The recorded marker (replay).
        case recorded(WorkflowStep)
        /// The history holds another step here: it was written by code from before the change (no position taken).
        case predates
        /// A new position (the code runs this point for the first time).
        case new(Int)
    }

    func claimVersion(_ changeID: String) throws -> VersionClaim {
        try Task.checkCancellation()
        return try state.withLock { state throws -> VersionClaim in
            if let broken = state.broken { throw broken }
            let position = state.next
            guard position < state.history.count else {
                state.next += 1
                return .new(position)
            }
            let recorded = state.history[position]
            guard recorded.kind == .value, recorded.name == "version:\(changeID)" else { return .predates }
            state.next += 1
            return .recorded(recorded)
        }
    }

    /// Fails the instance's code for good with `error` (a non-determinism).
    func breakWith(_ error: WorkflowError) -> WorkflowError {
        state.withLock { $0.broken = error }
        return error
    }

    /// Records `step`: a resolved activity or value waits (up to ``batchWindow``) to be written with the steps
    /// after it; any other step is written now, with the waiting ones before it. A failed write stops the
    /// executor.
    func record(_ step: WorkflowStep) async throws -> WorkflowStep {
        if batchWindow > 0, step.isResolved, step.kind == .activity || step.kind == .value {
            let now = clock.now()
            state.withLock { state in
                state.apply(step)
                state.unflushed.append(step)
                if state.oldestUnflushed == nil { state.oldestUnflushed = now }
            }
            return step
        }
        return try await write(takeUnflushed() + [step]).last ?? step
    }

    /// Writes the steps waiting to be written, if any.
    func flush() async throws {
        let steps = takeUnflushed()
        if !steps.isEmpty { _ = try await write(steps) }
    }

    /// When the steps waiting to be written are due to be (`nil` when none wait).
    var flushDue: Int64? { state.withLock { $0.oldestUnflushed.map { $0 + batchWindow } } }

    private func takeUnflushed() -> [WorkflowStep] {
        state.withLock { state in
            defer {
                state.unflushed = []
                state.oldestUnflushed = nil
            }
            return state.unflushed
        }
    }

    private func write(_ steps: [WorkflowStep]) async throws -> [WorkflowStep] {
        let recorded: [WorkflowStep]
        do {
            recorded = try await driver.record(steps, now: clock.now())
        } catch {
            throw stop(because: "recording step \(steps.first?.position ?? 0) failed: \(error)")
        }
        state.withLock { state in
            for step in recorded { state.apply(step) }
        }
        return recorded
    }

    /// Takes an event into wait `position`; a failed call stops the executor.
    func takeEvent(position: Int, name: String, deadlineReached: Bool) async throws -> WorkflowStep? {
        do {
            return try await driver.takeEvent(
                position: position, name: name, deadlineReached: deadlineReached, now: clock.now())
        } catch let error as WorkflowError where error.code == .nonDeterminism {
            state.withLock { $0.broken = error }
            throw error
        } catch {
            throw stop(because: "taking event '\(name)' failed: \(error)")
        }
    }

    /// Marks the executor stopped; returns the error every later step throws.
    func stop(because reason: String) -> any Error {
        state.withLock { state in
            if let broken = state.broken { return broken }
            let error = Stopped(reason: reason)
            state.broken = error
            return error
        }
    }

    /// Waits until `deadline`, or until the instance is asked to cancel (then throws it, unless compensating).
    func pause(until deadline: Int64) async throws {
        while clock.now() < deadline {
            let seen = driver.changes.generation
            try checkCancelRequest()
            await driver.changes.wait(after: seen, until: deadline, clock: clock)
            try Task.checkCancellation()
        }
    }

    func checkCancelRequest() throws {
        let compensating = state.withLock { $0.compensating }
        if driver.cancelRequested && !compensating {
            throw WorkflowError(.cancelled, "the instance was asked to cancel")
        }
    }
}

extension WorkflowExecutor.State {
    /// Puts `step` into the history here (appending it, or updating its position).
    fileprivate mutating func apply(_ step: WorkflowStep) {
        if step.position < history.count {
            history[step.position] = step
        } else if step.position == history.count {
            history.append(step)
        }
    }
}
