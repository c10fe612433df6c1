internal import FoundationEssentials
public import PlexCluster
internal import PlexCore

/// Starts workflow instances and reaches them, from any node or from a ``PlexClient``: calls go to whichever
/// node owns the instance.
///
/// The typed API is ``start(_:id:input:timeout:)`` and ``WorkflowHandle``; the untyped one (a type name, JSON
/// input and results) serves clients without the Swift types, such as `plex workflow`.
public struct WorkflowClient: Sendable {
    typealias Call = @Sendable (String, WorkflowInstance.Request, Duration) async throws -> WorkflowInstance.Response
    typealias IndexCall = @Sendable (String, WorkflowIndex.Request, Duration) async throws -> WorkflowIndex.Response
    let call: Call
    let callIndex: IndexCall

    /// A client on a node of the cluster.
    public init(node: PlexNode) {
        call = { id, request, timeout in
            try await node.actor(WorkflowInstance.self, key: id).ask(request, timeout: timeout)
        }
        callIndex = { shard, request, timeout in
            try await node.actor(WorkflowIndex.self, key: shard).ask(request, timeout: timeout)
        }
    }

    /// A client through a connection to a node.
    public init(client: PlexClient) {
        call = { id, request, timeout in
            try await client.ask(WorkflowInstance.self, key: id, request, timeout: timeout)
        }
        callIndex = { shard, request, timeout in
            try await client.ask(WorkflowIndex.self, key: shard, request, timeout: timeout)
        }
    }

    /// Starts an instance of `type` with `input`, or finds the one already started with `id` (starting is
    /// idempotent by instance id).
    /// - Throws: ``WorkflowError`` `typeMismatch` when `id` runs another type, `unknownWorkflowType` when the
    ///   owning node has not registered `type`; ``PlexCore/CallError`` when the owner cannot be reached.
    public func start<W: Workflow>(_ type: W.Type, id: String, input: W.Input, timeout: Duration = .seconds(10))
        async throws -> WorkflowHandle<W>
    {
        let bytes = try BinaryMessageCodec().encode(input)
        _ = try await send(id, .start(type: W.typeName, input: bytes, now: SystemWorkflowClock().now()), timeout)
        return handle(type, id: id)
    }

    /// A handle on instance `id` of `type` (which need not exist yet).
    public func handle<W: Workflow>(_ type: W.Type, id: String) -> WorkflowHandle<W> {
        WorkflowHandle(id: id, client: self)
    }

    // MARK: Untyped

    /// Starts an instance of the type named `typeName` with a JSON input (decoded by the owner's registered
    /// type), or finds the one already started with `id`.
    /// - Throws: as ``start(_:id:input:timeout:)``, and ``WorkflowError`` `invalidArgument` when the input does
    ///   not decode.
    public func start(typeName: String, id: String, jsonInput: [UInt8], timeout: Duration = .seconds(10))
        async throws -> WorkflowDescription
    {
        try description(
            from: try await send(
                id, .startJSON(type: typeName, json: jsonInput, now: SystemWorkflowClock().now()), timeout))
    }

    /// Instance `id` as its owner sees it; with `json`, its result as JSON too.
    public func describe(id: String, history: Bool = false, json: Bool = false, timeout: Duration = .seconds(10))
        async throws -> WorkflowDescription
    {
        try description(from: try await send(id, .describe(history: history, json: json), timeout))
    }

    /// Waits until instance `id` finishes (asking its owner again with a growing pause, 1 ms doubling up to
    /// 100 ms, as Durable Task clients do) and returns its description, result included as JSON when `json`.
    /// - Throws: ``WorkflowError`` `notFound` (never started) or `timedOut`.
    public func awaitCompletion(id: String, json: Bool = false, timeout: Duration = .seconds(60)) async throws
        -> WorkflowDescription
    {
        let clock = ContinuousClock()
        let deadline = clock.now + timeout
        var pause = Duration.milliseconds(1)
        while true {
            let description = try await describe(id: id, json: json)
            switch description.status {
            case .pending: throw WorkflowError(.notFound, "no workflow instance \(id) has been started")
            case .running: break
            default: return description
            }
            guard clock.now < deadline else {
                throw WorkflowError(.timedOut, "workflow \(id) did not finish within \(timeout)")
            }
            try await Task.sleep(for: min(pause, deadline - clock.now))
            pause = min(pause * 2, .milliseconds(100))
        }
    }

    /// Delivers event `name` with a JSON payload to instance `id`.
    /// - Throws: ``WorkflowError`` `notFound` before the instance starts, `invalidArgument` after it finished.
    public func signal(id: String, name: String, jsonPayload: [UInt8], timeout: Duration = .seconds(10)) async throws {
        _ = try await send(id, .signal(name: name, payload: jsonPayload), timeout)
    }

    /// Asks running instance `id` the query `name` (see ``WorkflowContext/onQuery(_:_:)``) and returns the
    /// handler's answer as JSON. Nothing is journaled.
    /// - Throws: ``WorkflowError`` `unknownQuery` when the code has no handler of that name or the instance is
    ///   not running, `timedOut` when its code has not caught up with its history within `timeout`.
    public func query(id: String, name: String, timeout: Duration = .seconds(10)) async throws -> [UInt8] {
        let budget = max(1, timeout.milliseconds - 100)
        guard case .json(let json) = try await send(id, .query(name: name, timeout: budget), timeout) else {
            throw WorkflowError(.invalidArgument, "the instance answered a query with something else")
        }
        return json
    }

    /// Asks instance `id` to cancel (see ``WorkflowHandle/cancel(timeout:)``).
    /// - Throws: ``WorkflowError`` `notFound` when no instance was started with this id.
    public func cancel(id: String, timeout: Duration = .seconds(10)) async throws -> WorkflowDescription {
        try started(id, try description(from: try await send(id, .cancel, timeout)))
    }

    /// Stops instance `id` at once (see ``WorkflowHandle/terminate(reason:timeout:)``).
    /// - Throws: ``WorkflowError`` `notFound` when no instance was started with this id.
    public func terminate(id: String, reason: String, timeout: Duration = .seconds(10)) async throws
        -> WorkflowDescription
    {
        try started(
            id,
            try description(
                from: try await send(id, .terminate(reason: reason, now: SystemWorkflowClock().now()), timeout)))
    }

    /// `description`, unless it is of an instance never started: a cancel or terminate of a mistyped id is
    /// refused as a signal to it is. (Checked here, not by the instance: journals hold such calls answered
    /// with the `pending` description, and their replay must answer them the same way.)
    private func started(_ id: String, _ description: WorkflowDescription) throws -> WorkflowDescription {
        guard description.status != .pending else {
            throw WorkflowError(.notFound, "no workflow instance '\(id)' has been started")
        }
        return description
    }

    /// Forgets finished instance `id` (its history and result); the id can be started again. Its journal rows
    /// go with the instance's next checkpoint.
    /// - Throws: ``WorkflowError`` `notFound` when no instance has the id, `invalidArgument` while it runs.
    public func purge(id: String, timeout: Duration = .seconds(10)) async throws {
        _ = try await send(id, .purge, timeout)
    }

    /// The instances of the cluster, newest first, from the index shards (eventually consistent: an instance's
    /// ``describe(id:history:json:timeout:)`` is the truth).
    /// - Parameters:
    ///   - type: Only instances of this workflow type.
    ///   - status: Only instances with this status.
    ///   - limit: At most this many.
    public func list(
        type: String? = nil, status: WorkflowStatus? = nil, limit: Int = 1_000, timeout: Duration = .seconds(10)
    ) async throws -> [WorkflowSummary] {
        let request = WorkflowIndex.Request.list(type: type, status: status, limit: limit)
        let callIndex = self.callIndex
        let found = try await withThrowingTaskGroup(of: [WorkflowSummary].self) { group in
            for shard in WorkflowIndex.allShards {
                group.addTask {
                    guard case .summaries(let summaries) = try await callIndex(shard, request, timeout) else {
                        throw WorkflowError(.invalidArgument, "an index shard answered with something else")
                    }
                    return summaries
                }
            }
            var all: [WorkflowSummary] = []
            for try await summaries in group { all += summaries }
            return all
        }
        return Array(found.sorted(by: WorkflowSummary.newestFirst).prefix(limit))
    }

    // MARK: Calls

    func send(_ id: String, _ request: WorkflowInstance.Request, _ timeout: Duration) async throws
        -> WorkflowInstance.Response
    {
        do {
            return try await call(id, request, timeout)
        } catch let error as CallError {
            throw WorkflowError(remote: error) ?? error
        }
    }

    private func description(from response: WorkflowInstance.Response) throws -> WorkflowDescription {
        guard case .description(let description) = response else {
            throw WorkflowError(.invalidArgument, "the instance answered with something else than its description")
        }
        return description
    }
}

/// One workflow instance, seen from a client.
public struct WorkflowHandle<W: Workflow>: Sendable {
    /// The instance id.
    public let id: String
    let client: WorkflowClient

    /// The instance's status, the step it is on and when its next timer or retry is due.
    public func describe(timeout: Duration = .seconds(10)) async throws -> WorkflowDescription {
        try await client.describe(id: id, timeout: timeout)
    }

    /// Every step of the instance's history, with its times, attempts and outcome.
    public func history(timeout: Duration = .seconds(10)) async throws -> [WorkflowStep] {
        try await client.describe(id: id, history: true, timeout: timeout).history ?? []
    }

    /// Waits for the instance to finish and returns its result.
    /// - Throws: ``WorkflowError`` `failed` (with the error the code threw as ``WorkflowError/failure``; an
    ///   activity that failed for good as `activityFailed`), `cancelled`, `terminated`, `notFound` (never
    ///   started), or `timedOut` when it has not finished in time.
    public func result(timeout: Duration = .seconds(60)) async throws -> W.Output {
        let description = try await client.awaitCompletion(id: id, timeout: timeout)
        switch description.status {
        case .completed:
            return try BinaryMessageCodec().decode(W.Output.self, from: description.output ?? [])
        case .cancelled:
            throw WorkflowError(.cancelled, "workflow \(id) was cancelled")
        case .terminated:
            throw WorkflowError(
                .terminated, "workflow \(id) was terminated: \(description.failure?.message ?? "")")
        default:
            let failure = description.failure
            if failure?.typeName == "WorkflowError", let code = failure?.code.flatMap(WorkflowError.Code.init) {
                throw WorkflowError(code, failure?.message ?? "", failure: failure)
            }
            throw WorkflowError(.failed, "workflow \(id) failed: \(failure?.message ?? "")", failure: failure)
        }
    }

    /// Delivers event `name` with `payload` (as JSON) to the instance: a wait for it returns it.
    /// - Throws: ``WorkflowError`` `notFound` before the instance starts, `invalidArgument` after it finished.
    public func signal<T: Codable & Sendable>(_ name: String, _ payload: T, timeout: Duration = .seconds(10))
        async throws
    {
        try await client.signal(
            id: id, name: name, jsonPayload: try JSONMessageCodec().encode(payload), timeout: timeout)
    }

    /// Asks the running instance the query `name` (see ``WorkflowContext/onQuery(_:_:)``); nothing is journaled.
    /// - Throws: ``WorkflowError`` `unknownQuery` when its code has no handler of that name or it is not running.
    public func query<T: Decodable & Sendable>(
        _ name: String, as type: T.Type = T.self, timeout: Duration = .seconds(10)
    )
        async throws -> T
    {
        try JSONMessageCodec().decode(T.self, from: try await client.query(id: id, name: name, timeout: timeout))
    }

    /// Asks the instance to cancel: its code sees ``WorkflowError`` `cancelled` at its next step, its
    /// compensations run, and it ends `cancelled`. A finished instance is left as it is.
    /// - Throws: ``WorkflowError`` `notFound` when no instance was started with this id.
    public func cancel(timeout: Duration = .seconds(10)) async throws {
        _ = try await client.cancel(id: id, timeout: timeout)
    }

    /// Stops the instance at once: nothing more of its code runs and it ends `terminated`. A finished instance
    /// is left as it is.
    /// - Throws: ``WorkflowError`` `notFound` when no instance was started with this id.
    public func terminate(reason: String, timeout: Duration = .seconds(10)) async throws {
        _ = try await client.terminate(id: id, reason: reason, timeout: timeout)
    }
}
