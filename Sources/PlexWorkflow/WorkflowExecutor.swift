internal import Logging
internal import PlexCore
internal import Synchronization
internal import Tracing

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
        /// When the oldest resolved one was taken (steps claimed and not yet resolved wait without a deadline).
        var oldestUnflushed: Int64?
        /// Whether a write is under way, and the writers waiting for their turn (writes go one at a time, so
        /// concurrent steps reach the instance in the order of their positions).
        var writing = false
        var writeWaiters: [CheckedContinuation<Void, Never>] = []
        /// The tasks of steps started concurrently (``WorkflowFuture``), by position.
        var futures: [Int: Task<[UInt8], any Error>] = [:]
        /// Positions given up by ``WorkflowContext/first(_:)``: their late results are not recorded.
        var abandoned: Set<Int> = []
        /// The code's query handlers, by name.
        var queries: [String: @Sendable () throws -> [UInt8]] = [:]
        /// Whether the code has claimed every step the history holds (or ended): queries are answered then.
        var caughtUp = false
        /// Activity attempts running now (the instance does not unload while one runs).
        var attempts = 0
        /// Whether the instance was asked to unload (and nothing has asked it to stay since).
        var unloadRequested = false
        /// Whether the code ended (or its activation did): a future started later is cancelled at once.
        var ended = false
        /// The engine's logger with this instance's metadata, made on first use (most instances never log, and
        /// setting metadata formats it again each time).
        var logger: Logger?
    }

    let driver: any WorkflowDriver
    let clock: any WorkflowClock
    let activities: ActivityRegistry
    /// The engine's logger; ``baseLogger`` adds this instance's metadata to it.
    private let engineLogger: Logger
    /// The node's id, for the logger's metadata.
    private let nodeID: String?
    /// How long (milliseconds) a completed activity or recorded value may wait to be written with the steps
    /// after it, so a run of fast steps costs one journal entry; 0 writes each before the code goes on.
    let batchWindow: Int64
    /// Flushes held-back steps whose window passes while an attempt runs (one per engine).
    let flushes: FlushScheduler
    /// How often (milliseconds) a wait for a child workflow asks the child again, in case word of its end
    /// was lost.
    let pollInterval: Int64
    /// A wait longer than this (milliseconds) with no attempt running unloads the instance; `nil`: never.
    let unloadAfter: Int64?
    /// Which run of the instance this is (``WorkflowRecord/continuedAsNew``): part of its steps' idempotency
    /// keys and default child ids, which must differ between runs.
    let run: Int
    /// Counts a failed activity attempt that will be tried again (``WorkflowMetrics``).
    let retried: @Sendable () -> Void
    /// Where activity attempts are reported as spans; `nil`: nowhere.
    let tracer: (any Tracer)?
    let workflowType: String
    private let state: Mutex<State>

    init(
        driver: any WorkflowDriver, history: [WorkflowStep], clock: any WorkflowClock, activities: ActivityRegistry,
        logger: Logger, nodeID: String? = nil, batchWindow: Int64 = 0, pollInterval: Int64 = 5_000,
        unloadAfter: Int64? = nil, run: Int = 0,
        retried: @escaping @Sendable () -> Void = {}, tracer: (any Tracer)? = nil, workflowType: String = "",
        flushes: FlushScheduler? = nil
    ) {
        self.flushes = flushes ?? FlushScheduler(clock: clock, window: batchWindow)
        self.tracer = tracer
        self.workflowType = workflowType
        self.run = run
        self.retried = retried
        self.pollInterval = pollInterval
        self.unloadAfter = unloadAfter
        self.driver = driver
        self.clock = clock
        self.activities = activities
        self.engineLogger = logger
        self.nodeID = nodeID
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
        if state.withLock({ $0.history.isEmpty }) { markCaughtUp() }
        let ending = await withTaskCancellationHandler {
            await outcome(of: body)
        } onCancel: {
            cancelFutures()
        }
        markCaughtUp()
        cancelFutures()
        guard var ending else { return }
        // A non-determinism the code caught still fails the instance.
        let found = state.withLock { $0.broken }
        if let found = found as? WorkflowError, found.code == .nonDeterminism {
            ending = .failed(EffectLog.Failure(found))
        } else if found != nil || Task.isCancelled {
            // A write failed (not the activation's end): end the activation, so the wake-up reminder brings the
            // instance back and its code starts again from the journal.
            if found is Stopped, !Task.isCancelled { await driver.unload(true) }
            return
        }
        await takeWriteTurn()
        defer { releaseWriteTurn() }
        try? await driver.finish(ending, steps: takeUnflushed(), now: clock.now())
    }

    private func outcome(of body: @Sendable (WorkflowContext) async throws -> [UInt8]) async
        -> WorkflowRecord.Ending?
    {
        do {
            return .completed(try await body(WorkflowContext(executor: self)))
        } catch let next as ContinueAsNew {
            return state.withLock { $0.broken } == nil ? .continuedAsNew(next.input) : nil
        } catch {
            return await settle(error)
        }
    }

    private func cancelFutures() {
        let tasks = state.withLock { state in
            state.ended = true
            defer { state.futures = [:] }
            return state.futures.values
        }
        for task in tasks { task.cancel() }
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

    /// The engine's logger with `workflow.id`, `workflow.type` and `node.id` metadata.
    var baseLogger: Logger {
        state.withLock { state in
            if let logger = state.logger { return logger }
            var logger = engineLogger
            var metadata = logger.handler.metadata
            metadata["workflow.id"] = "\(instanceID)"
            metadata["workflow.type"] = "\(workflowType)"
            if let nodeID { metadata["node.id"] = "\(nodeID)" }
            logger.handler.metadata = metadata
            state.logger = logger
            return logger
        }
    }

    /// The logger, silent while the code replays.
    var logger: Logger {
        isReplaying ? Logger(label: baseLogger.label, factory: { _ in SwiftLogNoOpLogHandler() }) : baseLogger
    }

    // MARK: Steps

    /// Claims the next position for a step of `kind` named `name`: its recorded state, if the history has it.
    /// - Throws: what stopped the executor, a cancellation request, or ``WorkflowError`` `nonDeterminism`.
    func claim(_ kind: WorkflowStep.Kind, _ name: String, target: ((Int) -> String)? = nil) throws
        -> (position: Int, recorded: WorkflowStep?)
    {
        try Task.checkCancellation()
        let cancelRequested = driver.cancelRequested
        let now = clock.now()
        let claimed = try state.withLock { state throws -> (Int, WorkflowStep?) in
            if let broken = state.broken { throw broken }
            let position = state.next
            // A cancellation takes effect where the code is, not while it replays what it did: the steps it
            // replays register their compensations, which the cancellation then runs.
            let inHistory = position < state.history.count
            if cancelRequested && !state.compensating && !(inHistory && state.history[position].isResolved) {
                // A recorded step still pending (the one it waited on) keeps its position: the compensations'
                // steps come after it.
                if inHistory { state.next += 1 }
                throw WorkflowError(.cancelled, "the instance was asked to cancel")
            }
            state.next += 1
            state.current = "\(kind.rawValue) '\(name)' (step \(position))"
            guard position < state.history.count else {
                state.addPlaceholder(
                    WorkflowStep(
                        position: position, kind: kind, name: name, startedAt: now, target: target?(position)))
                return (position, nil)
            }
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
        // Caught up: a new step, or the last recorded one still pending (the code waits on it).
        if claimed.1 == nil || (claimed.1?.isResolved == false && claimed.0 + 1 == state.withLock({ $0.history.count }))
        {
            markCaughtUp()
        }
        return claimed
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
        let now = clock.now()
        return try state.withLock { state throws -> VersionClaim in
            if let broken = state.broken { throw broken }
            let position = state.next
            guard position < state.history.count else {
                state.next += 1
                state.addPlaceholder(
                    WorkflowStep(position: position, kind: .value, name: "version:\(changeID)", startedAt: now))
                return .new(position)
            }
            let recorded = state.history[position]
            guard recorded.kind == .value, recorded.name == "version:\(changeID)" else { return .predates }
            state.next += 1
            if state.next == state.history.count, !recorded.isResolved { state.caughtUp = true }
            return .recorded(recorded)
        }
    }

    // MARK: Concurrent steps

    /// Runs a step whose position was claimed as a task of its own (a ``WorkflowFuture``); the executor cancels
    /// it when its code ends or its activation does.
    func startFuture(at position: Int, _ body: @escaping @Sendable () async throws -> [UInt8])
        -> Task<[UInt8], any Error>
    {
        let task = Task { try await body() }
        let ended = state.withLock { state in
            if !state.ended { state.futures[position] = task }
            return state.ended
        }
        if ended { task.cancel() }
        return task
    }

    /// Settles a race (``WorkflowContext/first(_:)``): in one step, records `marker` (the winner) and gives up
    /// the steps at `losers` (each unresolved one recorded as cancelled; a late result of its task is not
    /// recorded), then writes them together. Returns the marker as the history holds it, the losers' tasks and
    /// the ids of losing children, for the caller to cancel once the outcome is durable.
    func settleRace(losers: [Int], marker: WorkflowStep) async throws
        -> (marker: WorkflowStep, tasks: [Task<[UInt8], any Error>], children: [String])
    {
        let now = clock.now()
        let (tasks, children) = state.withLock { state in
            var tasks: [Task<[UInt8], any Error>] = []
            var children: [String] = []
            state.apply(marker)
            state.upsertUnflushed(marker)
            for position in losers where state.history.indices.contains(position) {
                if let task = state.futures.removeValue(forKey: position) { tasks.append(task) }
                var step = state.history[position]
                if step.kind == .child, let target = step.target { children.append(target) }
                guard !step.isResolved else { continue }
                step.outcome = .failure(.activity(WorkflowError(.cancelled, "another step finished first")))
                step.completedAt = now
                step.dueAt = nil
                state.apply(step)
                state.upsertUnflushed(step)
                state.abandoned.insert(position)
            }
            return (tasks, children)
        }
        let written = try await write()
        return (written.last { $0.position == marker.position } ?? marker, tasks, children)
    }

    /// The ids of the children at `positions` (for a replayed race: its losers).
    func children(at positions: [Int]) -> [String] {
        state.withLock { state in
            positions.compactMap { position in
                guard state.history.indices.contains(position), state.history[position].kind == .child else {
                    return nil
                }
                return state.history[position].target
            }
        }
    }

    /// The index in `positions` of the first step already resolved here.
    func lowestResolved(_ positions: [Int]) -> Int? {
        state.withLock { state in
            positions.firstIndex { state.history.indices.contains($0) && state.history[$0].isResolved }
        }
    }

    /// Whether the step at `position` was given up.
    func isAbandoned(_ position: Int) -> Bool { state.withLock { $0.abandoned.contains(position) } }

    // MARK: Queries

    /// Notified when the code catches up with its history (or ends).
    let progress = Notifier()

    private func markCaughtUp() {
        let first = state.withLock { state in
            defer { state.caughtUp = true }
            return !state.caughtUp
        }
        if first { progress.notify() }
    }

    func setQueryHandler(_ name: String, _ handler: @escaping @Sendable () throws -> [UInt8]) {
        state.withLock { $0.queries[name] = handler }
    }

    /// Answers query `name` with its handler's JSON, once the code has caught up with its history (so it has
    /// registered the handlers a live run would have), waiting up to `deadline`.
    /// - Throws: ``WorkflowError`` `unknownQuery` when no handler has that name, `timedOut` when the code has
    ///   not caught up in time.
    func query(_ name: String, deadline: Int64) async throws -> [UInt8] {
        while true {
            let seen = progress.generation
            let (ready, handler) = state.withLock { ($0.caughtUp, $0.queries[name]) }
            if ready {
                guard let handler else {
                    throw WorkflowError(.unknownQuery, "the instance's code answers no query '\(name)'")
                }
                return try handler()
            }
            guard clock.now() < deadline else {
                throw WorkflowError(.timedOut, "the instance's code had not caught up with its history in time")
            }
            await progress.wait(after: seen, until: deadline, clock: clock)
        }
    }

    /// Fails the instance's code for good with `error` (a non-determinism).
    func breakWith(_ error: WorkflowError) -> WorkflowError {
        state.withLock { $0.broken = error }
        return error
    }

    /// Records `step`: a resolved activity or value waits (up to ``batchWindow``) to be written with the steps
    /// after it; any other step is written now, with the waiting ones before it. Returns the step as the
    /// history holds it (a step already resolved stays as it was). A failed write stops the executor.
    func record(_ step: WorkflowStep) async throws -> WorkflowStep {
        try await record([step]).first ?? step
    }

    /// Records `steps` (see ``record(_:)-(WorkflowStep)``), written together.
    func record(_ steps: [WorkflowStep]) async throws -> [WorkflowStep] {
        let batched =
            batchWindow > 0 && steps.allSatisfy { $0.isResolved && ($0.kind == .activity || $0.kind == .value) }
        let now = clock.now()
        let kept = state.withLock { state in
            steps.map { step in
                if state.history.indices.contains(step.position), state.history[step.position].isResolved {
                    return state.history[step.position]
                }
                if state.abandoned.contains(step.position) { return step }
                state.apply(step)
                state.upsertUnflushed(step)
                if batched, state.oldestUnflushed == nil { state.oldestUnflushed = now }
                return step
            }
        }
        if batched { return kept }
        let written = try await write()
        return kept.map { step in written.last { $0.position == step.position } ?? step }
    }

    /// Writes the steps waiting to be written, if any.
    func flush() async throws {
        _ = try await write()
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

    /// Writes what waits to be written, in its turn. Not inlined (nor ``pause(until:)``): an async function's
    /// frame holds the locals of the async functions inlined into it, allocated on every call, and a batched
    /// step (most of them) writes nothing.
    @inline(never)
    private func write() async throws -> [WorkflowStep] {
        await takeWriteTurn()
        defer { releaseWriteTurn() }
        let steps = takeUnflushed()
        guard !steps.isEmpty else { return [] }
        let recorded: [WorkflowStep]
        do {
            // Not cancelled with the task that writes (a future that lost a race, say): a write under way
            // finishes, so the history stays contiguous and the executor goes on.
            let driver = self.driver
            let now = clock.now()
            recorded = try await Task { try await driver.record(steps, now: now) }.value
        } catch {
            throw stop(because: "recording step \(steps.first?.position ?? 0) failed: \(error)")
        }
        state.withLock { state in
            for step in recorded {
                // A step resolved here while this write was under way (an attempt that ended meanwhile) is
                // newer than the state of it the write took: it stays, and goes with the next write.
                if !step.isResolved, state.history.indices.contains(step.position),
                    state.history[step.position].isResolved
                {
                    continue
                }
                state.apply(step)
            }
        }
        return recorded
    }

    private func takeWriteTurn() async {
        let mine = state.withLock { state in
            guard state.writing else {
                state.writing = true
                return true
            }
            return false
        }
        if mine { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let now = state.withLock { state in
                guard state.writing else {
                    state.writing = true
                    return true
                }
                state.writeWaiters.append(continuation)
                return false
            }
            if now { continuation.resume() }
        }
    }

    private func releaseWriteTurn() {
        let next = state.withLock { state in
            guard !state.writeWaiters.isEmpty else {
                state.writing = false
                return nil as CheckedContinuation<Void, Never>?
            }
            return state.writeWaiters.removeFirst()
        }
        next?.resume()
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

    /// Whether an event `name` waits in the inbox; a failed call stops the executor.
    func hasEvent(_ name: String) async throws -> Bool {
        do {
            return try await driver.hasEvent(name)
        } catch {
            throw stop(because: "reading the inbox for event '\(name)' failed: \(error)")
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
    @inline(never)
    func pause(until deadline: Int64) async throws {
        await waiting(until: deadline)
        while clock.now() < deadline {
            let seen = driver.changes.generation
            try checkCancelRequest()
            await waitForChange(after: seen, until: deadline)
            try Task.checkCancellation()
        }
    }

    /// Waits until the instance changes after generation `seen` (see ``Notifier``) or `deadline` passes. While
    /// an unload is pending the wait sets no timer: the activation is about to end (which cancels the wait),
    /// and the wake-up reminder fires at the deadline in any case. (A cancelled `Task.sleep` keeps its timer's
    /// memory until the time it was set for: an hour's timer per unloaded instance would stay in memory.)
    func waitForChange(after seen: UInt64, until deadline: Int64?) async {
        let unloading = state.withLock { $0.unloadRequested }
        await driver.changes.wait(after: seen, until: unloading ? nil : deadline, clock: clock)
        // Woken with the activation still there (a wake-up, an event, a read that kept it in use): the unload
        // did not happen. It is called off, and every wait sets its timer again (or the code's next steps,
        // a child's say, would wait on the reminder's coarser plan).
        guard unloading, !Task.isCancelled else { return }
        _ = callOffUnload()
    }

    /// Takes back a pending unload, if there is one, and wakes the waits that set no timer because of it (they
    /// set one now). Returns whether there was one.
    private func callOffUnload() -> Bool {
        let pending = state.withLock { state in
            defer { state.unloadRequested = false }
            return state.unloadRequested
        }
        if pending { driver.changes.notify() }
        return pending
    }

    /// The code is about to wait until `due` (`nil`: for an event): a long wait with no attempt running
    /// unloads the instance (see ``WorkflowEngine/Options/unloadAfter``). Pending writes go first.
    func waiting(until due: Int64?) async {
        markCaughtUp()
        guard let unloadAfter else { return }
        if let due, due - clock.now() <= unloadAfter { return }
        guard state.withLock({ $0.attempts == 0 && $0.broken == nil }) else { return }
        guard (try? await flush()) != nil else { return }
        // Checked again: an attempt may have started during the flush (it must not be unloaded under it).
        let unload = state.withLock { state in
            guard state.attempts == 0, state.broken == nil else { return false }
            state.unloadRequested = true
            return true
        }
        guard unload else { return }
        await driver.unload(true)
    }

    /// Counts an activity attempt running while `body` runs; an unload asked for earlier is called off.
    func attempting<T>(_ body: () async throws -> T) async throws -> T {
        // Counted first: an unload asked for from now on sees the attempt (``waiting(until:)`` checks again).
        state.withLock { $0.attempts += 1 }
        if callOffUnload() { await driver.unload(false) }
        defer { state.withLock { $0.attempts -= 1 } }
        return try await body()
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

    /// A step claimed for the first time: in the history here at once, and written with the next write, so
    /// steps that run concurrently reach the instance in the order of their positions.
    fileprivate mutating func addPlaceholder(_ step: WorkflowStep) {
        apply(step)
        unflushed.append(step)
    }

    /// Queues `step` for the next write, in place of an earlier state of it.
    fileprivate mutating func upsertUnflushed(_ step: WorkflowStep) {
        if let index = unflushed.lastIndex(where: { $0.position == step.position }) {
            unflushed[index] = step
        } else {
            unflushed.append(step)
        }
    }
}

extension WorkflowExecutor {
    /// Runs one attempt of an activity in a span (`activity NAME`) of the workflow's trace, when tracing.
    func traced<T>(
        _ context: ActivityContext, isolation: isolated (any Actor)? = #isolation, _ attempt: () async throws -> T
    ) async throws -> T {
        guard let tracer else { return try await attempt() }
        let span = tracer.startAnySpan("activity \(context.name)", ofKind: .internal)
        span.attributes["plex.workflow.id"] = instanceID
        span.attributes["plex.workflow.type"] = workflowType
        span.attributes["plex.workflow.position"] = context.position
        span.attributes["plex.activity.attempt"] = context.attempt
        defer { span.end() }
        do {
            return try await ServiceContext.withValue(span.context) { try await attempt() }
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
            throw error
        }
    }
}
