internal import PlexCore
internal import Synchronization

/// One activation's run of a workflow instance's code: the executor task, and the word it gets of events and
/// cancellation requests. Lives as long as the activation; ``end()`` cancels the code (it starts again, from
/// its history, in the next activation).
final class InstanceRun: Sendable {
    private struct State {
        var task: Task<Void, Never>?
        var executor: WorkflowExecutor?
        var cancelRequested = false
        var ended = false
    }

    private let state = Mutex(State())
    let changes = Notifier()

    /// Starts the code of running instance `record`, unless it runs already or the activation ended.
    func begin(_ record: WorkflowRecord, context: ActorContext, engine: WorkflowEngine) {
        guard let workflow = engine.workflow(named: record.type) else {
            engine.logger.error(
                "a running workflow instance's type is not registered on this node; it waits until it is",
                metadata: ["workflow.id": "\(context.id.key)", "workflow.type": "\(record.type)"])
            return
        }
        // The executor outlives the turn: it keeps a context without the activation (which holds this run,
        // so keeping it would make a cycle that outlives the activation) and without the turn's output gate
        // (the executor calls out only after its own writes are durable).
        var plain = context
        plain.activation = nil
        plain.effects = nil
        let detached = plain
        let driver = InstanceDriver(
            ref: detached.actor(WorkflowInstance.self, key: context.id.key), run: self,
            instances: { detached.actor(WorkflowInstance.self, key: $0) },
            workers: { detached.actor(ActivityWorker.self, key: $0) }, onClose: engine.options.onClose)
        let executor = WorkflowExecutor(
            driver: driver, history: record.steps, clock: engine.options.clock, activities: engine.activities,
            logger: engine.logger, nodeID: context.nodeID.rawValue,
            batchWindow: engine.options.batchWindow.milliseconds,
            pollInterval: engine.options.resumeInterval.milliseconds,
            unloadAfter: engine.options.unloadAfter?.milliseconds, run: record.continuedAsNew,
            retried: { [metrics = engine.metrics, type = record.type] in metrics.retried(type) },
            tracer: engine.tracer, workflowType: record.type, flushes: engine.flushes)
        let input = record.input
        state.withLock { state in
            guard state.task == nil, !state.ended else { return }
            state.cancelRequested = record.cancelRequested
            state.executor = executor
            state.task = Task { await executor.run { context in try await workflow.run(input, context) } }
        }
    }

    /// Starts the code of a new run in this activation, in place of the previous run's (which has ended or is
    /// ending): the instance continued as new, or was purged and started again.
    func restart(_ record: WorkflowRecord, context: ActorContext, engine: WorkflowEngine) {
        let previous = state.withLock { state in
            defer {
                state.task = nil
                state.executor = nil
                state.ended = false
                state.cancelRequested = false
            }
            return state.task
        }
        previous?.cancel()
        begin(record, context: context, engine: engine)
    }

    /// Answers query `name` (see ``WorkflowExecutor/query(_:deadline:)``).
    func query(_ name: String, deadline: Int64) async throws -> [UInt8] {
        guard let executor = state.withLock({ $0.executor }) else {
            throw WorkflowError(.unknownQuery, "the instance's code is not running on this node")
        }
        return try await executor.query(name, deadline: deadline)
    }

    /// The activation ended (or the instance was terminated): the code is cancelled.
    func end() {
        let task = state.withLock { state in
            state.ended = true
            // The executor (and what it holds) goes with its task, not with this run.
            state.executor = nil
            defer { state.task = nil }
            return state.task
        }
        task?.cancel()
    }

    func requestCancel() {
        state.withLock { $0.cancelRequested = true }
        changes.notify()
    }

    var cancelRequested: Bool { state.withLock { $0.cancelRequested } }

    var currentStep: String? { state.withLock { $0.executor }?.currentStep }
}

/// The durable actor as an executor's driver: each write is a message to the instance, journaled before the
/// executor goes on.
struct InstanceDriver: WorkflowDriver {
    let ref: ActorRef<WorkflowInstance>
    let run: InstanceRun
    /// A reference to another instance (a child).
    let instances: @Sendable (String) -> ActorRef<WorkflowInstance>
    /// A reference to the worker of an activity attempt.
    let workers: @Sendable (String) -> ActorRef<ActivityWorker>
    let onClose: (@Sendable (String, WorkflowStatus) -> Void)?

    var instanceID: String { ref.id.key }
    var cancelRequested: Bool { run.cancelRequested }
    var changes: Notifier { run.changes }

    func record(_ steps: [WorkflowStep], now: Int64) async throws -> [WorkflowStep] {
        guard case .steps(let stored) = try await ask(.record(steps, now: now)) else {
            throw WorkflowError(.invalidArgument, "the instance answered steps with something else")
        }
        return stored
    }

    func takeEvent(position: Int, name: String, deadlineReached: Bool, now: Int64) async throws -> WorkflowStep? {
        guard
            case .step(let step) = try await ask(
                .takeEvent(position: position, name: name, deadlineReached: deadlineReached, now: now))
        else { throw WorkflowError(.invalidArgument, "the instance answered an event with something else") }
        return step
    }

    func hasEvent(_ name: String) async throws -> Bool {
        guard case .flag(let waiting) = try await ask(.hasEvent(name: name)) else {
            throw WorkflowError(.invalidArgument, "the instance answered an inbox read with something else")
        }
        return waiting
    }

    func finish(_ ending: WorkflowRecord.Ending, steps: [WorkflowStep], now: Int64) async throws {
        let request = WorkflowInstance.Request.finish(ending, steps: steps, now: now)
        if case .continuedAsNew = ending {
            // In a task of its own: the new run, started in this message's turn, cancels this executor's task,
            // and a turn whose caller was cancelled is not kept.
            _ = try await Task { [self] in try await ask(request) }.value
        } else {
            // In this task (a new one costs its allocations again for the whole call): the activation's end
            // cancels it only outside the turn, and the wait for the entry to be durable ignores cancellation.
            // Cancelled before the turn started, the finish is not recorded and the next activation runs the
            // code to its end again.
            _ = try await ask(request)
        }
        guard let onClose else { return }
        switch ending {
        case .completed: onClose(instanceID, .completed)
        case .failed: onClose(instanceID, .failed)
        case .cancelled: onClose(instanceID, .cancelled)
        case .continuedAsNew: break
        }
    }

    func startChild(id: String, type: String, input: [UInt8], now: Int64) async throws {
        _ = try await ask(.start(type: type, input: input, now: now, parent: instanceID), of: instances(id))
    }

    func describeChild(id: String) async throws -> WorkflowDescription {
        guard
            case .description(let description) = try await ask(
                .describe(history: false, json: false), of: instances(id))
        else { throw WorkflowError(.invalidArgument, "the child answered with something else than its description") }
        return description
    }

    func cancelChild(id: String) async throws {
        _ = try await ask(.cancel, of: instances(id))
    }

    func unload(_ unload: Bool) async {
        try? await ref.tell(unload ? .unload : .stay)
    }

    func runOnWorker(input: [UInt8], context: ActivityContext, timeout: Duration) async throws -> [UInt8] {
        let request = ActivityWorker.Request(
            name: context.name, input: input, instanceID: context.instanceID, position: context.position,
            attempt: context.attempt, run: context.run)
        do {
            return try await workers(ActivityWorker.key(context)).ask(request, timeout: timeout).output
        } catch let error as CallError {
            if let error = WorkflowError(remote: error) { throw error }
            // The activity's own typed error reads as it would have on this node.
            if let code = error.remoteCode { throw ActorFailure(code: code, message: error.message) }
            throw error
        }
    }

    private func ask(_ request: WorkflowInstance.Request, of instance: ActorRef<WorkflowInstance>? = nil)
        async throws -> WorkflowInstance.Response
    {
        do {
            return try await (instance ?? ref).ask(request, timeout: .seconds(30))
        } catch let error as CallError {
            throw WorkflowError(remote: error) ?? error
        }
    }
}
