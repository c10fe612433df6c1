public import PlexCore

extension WorkflowRecord: ActorState {}

/// The durable virtual actor behind every workflow instance, keyed by the instance id.
///
/// Its state is a ``WorkflowRecord``; each message changes it through one of the record's functions and is
/// journaled like any durable actor's, so the instance is placed, recovered and handed off as one. The code
/// itself runs outside the actor's turns, in the activation's ``InstanceRun``: it is started when the instance
/// starts and whenever an activation of a running instance begins (after a restart, a handoff or an idle
/// deactivation; the instance's `wake` reminder brings such an activation about), and stopped when the
/// activation ends.
struct WorkflowInstance: VirtualActor {
    static let typeName = "plex.workflow"
    static let durability = Durability.durable(checkpointEvery: 64)

    enum Request: Codable, Sendable {
        case start(type: String, input: [UInt8], now: Int64, parent: String? = nil)
        /// A start whose input is JSON (converted by the owner's registered type).
        case startJSON(type: String, json: [UInt8], now: Int64)
        case record([WorkflowStep], now: Int64)
        case takeEvent(position: Int, name: String, deadlineReached: Bool, now: Int64)
        case finish(WorkflowRecord.Ending, steps: [WorkflowStep], now: Int64)
        case signal(name: String, payload: [UInt8])
        case cancel
        case terminate(reason: String, now: Int64)
        case describe(history: Bool, json: Bool)
        /// The wake-up reminder (its due time).
        case wake(due: Int64)
        /// A child instance closed (its parent's wait for it looks again).
        case childClosed(id: String)
        /// A query for the code's handler `name`, answered within `timeout` milliseconds.
        case query(name: String, timeout: Int64)
        /// Forget a finished instance: its id can be started again.
        case purge
        /// The code waits with nothing running: end the activation once it is idle.
        case unload
        /// The code is busy again: an unload asked for earlier is called off.
        case stay
        /// Whether an event `name` waits in the inbox (read before a `takeEvent`, so a wait that finds nothing
        /// journals nothing).
        case hasEvent(name: String)
    }

    /// The large payloads are boxed (`indirect`): a reply passes through several async functions, each of whose
    /// frames reserves room for it at every call.
    enum Response: Codable, Sendable {
        indirect case description(WorkflowDescription)
        indirect case step(WorkflowStep?)
        case steps([WorkflowStep])
        case json([UInt8])
        case done
        case flag(Bool)
    }

    /// Reads and word of a child's end are not journaled.
    static func isReadOnly(_ request: Request) -> Bool {
        switch request {
        case .describe, .query, .childClosed, .unload, .stay, .hasEvent: true
        default: false
        }
    }

    let engine: WorkflowEngine
    let run: InstanceRun

    init() {
        self.init(engine: .unconfigured)
    }

    init(engine: WorkflowEngine) {
        self.engine = engine
        self.run = InstanceRun()
    }

    func activate(state: inout WorkflowRecord, context: ActorContext) async throws {
        guard state.status != .pending else { return }
        // Each activation repeats the instance's word to its index shard (a closed one's too: a close whose word
        // was lost in a crash is repaired when the instance is next read).
        index(state, context: context)
        guard state.status == .running else { return }
        run.begin(state, context: context, engine: engine)
    }

    func deactivate(state: inout WorkflowRecord, context: ActorContext) async {
        run.end()
    }

    func handle(_ request: Request, state: inout WorkflowRecord, context: ActorContext) async throws -> Response {
        // A closed instance is read rarely: whatever brought it here (a read, a late word from its executor or a
        // child), it asks to end again, or the message would keep it until the idle timeout.
        defer { if state.status.isClosed { context.deactivateOnIdle() } }
        do {
            return try await handleOrThrow(request, state: &state, context: context)
        } catch let error as WorkflowError {
            throw error.actorFailure
        }
    }

    /// Runs one message. Each case that awaits runs in a function of its own, not inlined: an async function's
    /// frame holds the locals of all its cases (and of the async functions inlined into it), and this switch's
    /// was 11 KB, allocated for every message.
    private func handleOrThrow(_ request: Request, state: inout WorkflowRecord, context: ActorContext)
        async throws -> Response
    {
        switch request {
        case .startJSON(let type, let json, let now):
            return try await startJSON(type: type, json: json, now: now, state: &state, context: context)
        case .start(let type, let input, let now, let parent):
            return try await start(type: type, input: input, now: now, parent: parent, state: &state, context: context)
        case .record(let steps, let now):
            return try await record(steps, now: now, state: &state, context: context)
        case .takeEvent(let position, let name, let reached, let now):
            return try await takeEvent(
                position: position, name: name, deadlineReached: reached, now: now, state: &state, context: context)
        case .finish(let ending, let steps, let now):
            return try await finish(ending, steps: steps, now: now, state: &state, context: context)
        case .signal(let name, let payload):
            try state.signal(name, payload: payload)
            if !context.isReplaying { run.changes.notify() }
            return .done
        case .cancel:
            if state.requestCancel() && !context.isReplaying { run.requestCancel() }
            return .description(describe(state, id: context.id.key, history: false))
        case .terminate(let reason, let now):
            return try await terminate(reason: reason, now: now, state: &state, context: context)
        case .describe(let history, let json):
            return .description(describeForClient(state, id: context.id.key, history: history, json: json))
        case .purge:
            try purge(&state, context: context)
            return .done
        case .childClosed:
            run.changes.notify()
            return .done
        case .unload:
            context.deactivateOnIdle()
            return .done
        case .stay:
            // Arriving here marked the activation used just now.
            return .done
        case .hasEvent(let name):
            return .flag(state.inbox.contains { $0.name == name })
        case .query(let name, let timeout):
            return try await query(name, timeout: timeout, state: state)
        case .wake(let due):
            return try await wake(due: due, state: &state, context: context)
        }
    }

    @inline(never)
    private func startJSON(
        type: String, json: [UInt8], now: Int64, state: inout WorkflowRecord, context: ActorContext
    ) async throws -> Response {
        guard state.status == .pending else {
            return try await start(type: type, input: [], now: now, parent: nil, state: &state, context: context)
        }
        let entry = try registered(type, live: !context.isReplaying, on: context)
        // Converted once and journaled: a replay does not depend on the type still being registered.
        let input = try await context.run("plex.workflow.input") { () throws -> [UInt8] in
            do {
                return try entry?.inputFromJSON(json) ?? []
            } catch {
                throw WorkflowError(.invalidArgument, "the input is not a '\(type)' input: \(error)").actorFailure
            }
        }
        return try await start(type: type, input: input, now: now, parent: nil, state: &state, context: context)
    }

    @inline(never)
    private func start(
        type: String, input: [UInt8], now: Int64, parent: String?, state: inout WorkflowRecord, context: ActorContext
    ) async throws -> Response {
        let live = !context.isReplaying
        if state.status == .pending { _ = try registered(type, live: live, on: context) }
        if try state.start(type: type, input: input, now: now, parent: parent) == .started {
            try await rearm(&state, now: now, context: context)
            if live {
                engine.metrics.started(type)
                run.restart(state, context: context, engine: engine)
                index(state, context: context)
            }
        }
        return .description(describe(state, id: context.id.key, history: false))
    }

    @inline(never)
    private func record(_ steps: [WorkflowStep], now: Int64, state: inout WorkflowRecord, context: ActorContext)
        async throws -> Response
    {
        var stored: [WorkflowStep] = []
        for step in steps { stored.append(try state.record(step)) }
        try await rearm(&state, now: now, context: context)
        return .steps(stored)
    }

    @inline(never)
    private func takeEvent(
        position: Int, name: String, deadlineReached: Bool, now: Int64, state: inout WorkflowRecord,
        context: ActorContext
    ) async throws -> Response {
        let taken = try state.takeEvent(position: position, name: name, deadlineReached: deadlineReached, now: now)
        if taken != nil { try await rearm(&state, now: now, context: context) }
        return .step(taken)
    }

    @inline(never)
    private func finish(
        _ ending: WorkflowRecord.Ending, steps: [WorkflowStep], now: Int64, state: inout WorkflowRecord,
        context: ActorContext
    ) async throws -> Response {
        let live = !context.isReplaying
        for step in steps { _ = try state.record(step) }
        let wasRunning = state.status == .running
        state.finish(ending, now: now)
        try await rearm(&state, now: now, context: context)
        if state.status == .running {
            // Continued as new: the next run starts from an empty history.
            if live { run.restart(state, context: context, engine: engine) }
            return .done
        }
        if live {
            if wasRunning { engine.metrics.closed(state.type, status: state.status) }
            tellParent(of: state, context: context)
            index(state, context: context)
        }
        // Closed: `handle` asks for the activation to end.
        return .done
    }

    @inline(never)
    private func terminate(reason: String, now: Int64, state: inout WorkflowRecord, context: ActorContext)
        async throws -> Response
    {
        if state.terminate(reason: reason, now: now) {
            try await rearm(&state, now: now, context: context)
            if !context.isReplaying {
                engine.metrics.closed(state.type, status: state.status)
                run.end()
                tellParent(of: state, context: context)
                index(state, context: context)
            }
        }
        return .description(describe(state, id: context.id.key, history: false))
    }

    /// Forgets a finished instance.
    private func purge(_ state: inout WorkflowRecord, context: ActorContext) throws {
        switch state.status {
        case .pending: throw WorkflowError(.notFound, "no workflow instance has been started with this id")
        case .running: throw WorkflowError(.invalidArgument, "the instance is running: cancel or terminate it first")
        default: break
        }
        // A later start under this id is a new run: its steps' idempotency keys and its children's ids
        // differ from the purged instance's (a service that deduplicates must not answer it from the old one).
        let runs = state.continuedAsNew + 1
        state = WorkflowRecord()
        state.continuedAsNew = runs
        if !context.isReplaying {
            let shard = context.actor(WorkflowIndex.self, key: WorkflowIndex.shard(of: context.id.key))
            engine.index.add(.remove(id: context.id.key), to: shard)
        }
        context.deactivateOnIdle()
    }

    @inline(never)
    private func query(_ name: String, timeout: Int64, state: WorkflowRecord) async throws -> Response {
        guard state.status == .running else {
            throw WorkflowError(.unknownQuery, "the instance is not running (\(state.status.rawValue))")
        }
        return .json(try await run.query(name, deadline: engine.options.clock.now() + timeout))
    }

    @inline(never)
    private func wake(due: Int64, state: inout WorkflowRecord, context: ActorContext) async throws -> Response {
        // Arriving here activated the instance (and so started its code, if it runs); set the next one.
        state.wakeDue = nil
        try await rearm(&state, now: due, context: context)
        // Code already running may wait without a timer of its own (an unload was pending): this is its time.
        if !context.isReplaying { run.changes.notify() }
        return .done
    }

    /// Tells the instance's parent, if it has one, that it closed (at most once per closing: the parent also
    /// asks again now and then, so word lost in a crash costs only time).
    private func tellParent(of state: WorkflowRecord, context: ActorContext) {
        guard let parent = state.parent else { return }
        let ref = context.actor(Self.self, key: parent)
        let id = context.id.key
        Task { try? await ref.tell(.childClosed(id: id)) }
    }

    /// Tells the instance's index shard where it is (in the background: the list is eventually consistent).
    private func index(_ state: WorkflowRecord, context: ActorContext) {
        let shard = context.actor(WorkflowIndex.self, key: WorkflowIndex.shard(of: context.id.key))
        let summary = WorkflowSummary(
            id: context.id.key, type: state.type, status: state.status, startedAt: state.startedAt,
            closedAt: state.closedAt)
        engine.index.add(.update(summary), to: shard)
    }

    /// The registered entry of `type` (`nil` during a replay, which needs none).
    /// - Throws: ``WorkflowError`` `unknownWorkflowType` when it is not registered.
    private func registered(_ type: String, live: Bool, on context: ActorContext) throws(WorkflowError)
        -> WorkflowEngine.Entry?
    {
        guard live else { return nil }
        guard let entry = engine.workflow(named: type) else {
            throw WorkflowError(.unknownWorkflowType, "no workflow type '\(type)' is registered on \(context.nodeID)")
        }
        return entry
    }

    private func rearm(_ state: inout WorkflowRecord, now: Int64, context: ActorContext) async throws {
        switch state.wakePlan(now: now, resumeAfter: engine.options.resumeInterval.milliseconds) {
        case .keep: break
        case .arm(let due):
            try await context.schedule(Request.wake(due: due), after: .milliseconds(max(0, due - now)), name: "wake")
        case .cancel:
            try context.cancelReminder("wake")
        }
    }

    /// The description a client asked for: with the history, and the result as JSON, if asked.
    private func describeForClient(_ state: WorkflowRecord, id: String, history: Bool, json: Bool)
        -> WorkflowDescription
    {
        var description = describe(state, id: id, history: history)
        if json, let output = state.output {
            description.outputJSON = try? engine.workflow(named: state.type).map { try $0.outputToJSON(output) }
        }
        return description
    }

    private func describe(_ state: WorkflowRecord, id: String, history: Bool) -> WorkflowDescription {
        let waiting = state.steps.last.flatMap { $0.isResolved ? nil : $0 }
        return WorkflowDescription(
            id: id, type: state.type, status: state.status, startedAt: state.startedAt, closedAt: state.closedAt,
            currentStep: state.status == .running ? (run.currentStep ?? waiting.map(\.label)) : nil,
            nextDueAt: state.status == .running ? state.nextDue : nil, stepCount: state.steps.count,
            output: state.output, failure: state.failure, history: history ? state.steps : nil,
            parent: state.parent, continuedAsNew: state.continuedAsNew)
    }
}

/// What an instance looks like from outside: its status, where it is, and how it ended.
public struct WorkflowDescription: Sendable, Hashable, Codable {
    /// The instance id.
    public var id: String
    /// The workflow type's name (empty for an instance never started).
    public var type: String
    /// Where it is in its life.
    public var status: WorkflowStatus
    /// When it started and finished (milliseconds since 1970).
    public var startedAt: Int64
    public var closedAt: Int64?
    /// The step it is on, while it runs.
    public var currentStep: String?
    /// When its pending timer fires, its next retry starts or its event wait times out.
    public var nextDueAt: Int64?
    /// How many steps its history holds.
    public var stepCount: Int
    /// The encoded result, once completed.
    public var output: [UInt8]?
    /// Why it failed, was cancelled or terminated.
    public var failure: EffectLog.Failure?
    /// Every step, when asked for.
    public var history: [WorkflowStep]?
    /// The result as JSON, when asked for (clients without the Swift types).
    public var outputJSON: [UInt8]?
    /// The instance that started this one as its child.
    public var parent: String?
    /// How many runs came before this one under this id (continued as new, or purged and started again).
    public var continuedAsNew = 0
}
