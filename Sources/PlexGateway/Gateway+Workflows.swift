internal import Hummingbird
internal import PlexCore
internal import PlexWorkflow
internal import ServiceLifecycle

extension Gateway {
    /// The `/v1/workflows` routes: start, status, result, history, events, queries, cancel, terminate, list
    /// and purge, each through the ``PlexWorkflow/WorkflowClient`` of this node (calls go to the owner).
    func workflow(_ route: GatewayRoute, _ request: Request, _ context: GatewayRequestContext) async throws
        -> Response
    {
        let timeout = try self.timeout(of: request)
        if route == .listWorkflows { return try await list(request, timeout: timeout) }
        let id = try parameter("id", of: route, context)
        switch route {
        case .startWorkflow:
            let input = try await body(of: request)
            let description = try await workflows.start(
                typeName: try parameter("type", of: route, context), id: id,
                jsonInput: input.isEmpty ? Array("null".utf8) : input,
                timeout: timeout)
            return text(WorkflowJSON.description(description))
        case .describeWorkflow:
            let description = try await workflows.describe(id: id, json: true, timeout: timeout)
            guard description.status != .pending else {
                throw WorkflowError(.notFound, "no workflow instance \(id) has been started")
            }
            return text(WorkflowJSON.description(description))
        case .workflowResult:
            // `wait_ms` waits for the instance to finish; without it (or when it has not finished within it)
            // the answer is 202 with the instance's status.
            guard let wait = try positiveInteger("wait_ms", of: request) else {
                return try result(try await workflows.describe(id: id, json: true, timeout: timeout))
            }
            // A long poll also ends when its client goes (it closed its side of the connection, or reset its
            // HTTP/2 stream), rather than asking the owner on for up to `maximumTimeout`, and on a graceful stop
            // (the client may ask another node): then it answers what a wait that ended answers (a client that
            // only half-closed still reads it).
            let stopping = ClientPresence()
            let endings = await context.clientPresence() + [stopping]
            let waited = try await resultWaits.during {
                try await withGracefulShutdownHandler {
                    try await withThrowingTaskGroup(of: Response?.self) { group in
                        group.addTask { try await self.awaitResult(id, wait: .milliseconds(wait), timeout: timeout) }
                        for ending in endings {
                            group.addTask {
                                await ending.untilGone(); return nil
                            }
                        }
                        let first = try await group.next() ?? nil
                        group.cancelAll()
                        return first
                    }
                } onGracefulShutdown: {
                    stopping.markGone()
                }
            }
            var response: Response
            if let waited {
                response = waited
            } else {
                response = try result(try await workflows.describe(id: id, json: true, timeout: timeout))
            }
            // The connection closes after this answer on a stop: an HTTP/1.1 client is told (HTTP/2's GOAWAY says
            // it), so that it polls again on a new connection rather than on this one.
            if stopping.isGone && !context.isHTTP2 { response.headers[.connection] = "close" }
            return response
        case .workflowHistory:
            let description = try await workflows.describe(id: id, history: true, json: true, timeout: timeout)
            guard description.status != .pending else {
                throw WorkflowError(.notFound, "no workflow instance \(id) has been started")
            }
            return text(WorkflowJSON.history(description))
        case .signalWorkflow:
            let payload = try await body(of: request)
            try await workflows.signal(
                id: id, name: try parameter("name", of: route, context),
                jsonPayload: payload.isEmpty ? Array("null".utf8) : payload,
                timeout: timeout)
            return json(Array(#"{"delivered":true}"#.utf8))
        case .queryWorkflow:
            return json(
                try await workflows.query(id: id, name: try parameter("name", of: route, context), timeout: timeout))
        case .cancelWorkflow:
            let description = try await workflows.cancel(id: id, timeout: timeout)
            return text(WorkflowJSON.description(description))
        case .terminateWorkflow:
            let reason = request.uri.queryParameters["reason"].map(String.init) ?? "terminated over HTTP"
            let description = try await workflows.terminate(id: id, reason: reason, timeout: timeout)
            return text(WorkflowJSON.description(description))
        case .purgeWorkflow:
            try await workflows.purge(id: id, timeout: timeout)
            return json(Array(#"{"purged":true}"#.utf8))
        default:
            throw GatewayError(.notFound, code: "notFound", "no workflow route \(route)")
        }
    }

    /// Instance `id`'s result once it finishes within `wait` (at most `maximumTimeout`), else its status (202).
    private func awaitResult(_ id: String, wait: Duration, timeout: Duration) async throws -> Response {
        do {
            return try result(
                try await workflows.awaitCompletion(
                    id: id, json: true, timeout: min(wait, configuration.maximumTimeout)))
        } catch let error as WorkflowError where error.code == .timedOut {
            return text(
                WorkflowJSON.description(try await workflows.describe(id: id, json: true, timeout: timeout)),
                status: .accepted)
        }
    }

    /// The answer for an instance's description: its result (200) once it finished, its status while it runs (202).
    private func result(_ description: WorkflowDescription) throws -> Response {
        switch description.status {
        case .pending: throw WorkflowError(.notFound, "no workflow instance \(description.id) has been started")
        case .running: return text(WorkflowJSON.description(description), status: .accepted)
        default: return text(WorkflowJSON.description(description))
        }
    }

    /// `GET /v1/workflows?type=&status=&limit=`: instances from every node's index, newest first.
    private func list(_ request: Request, timeout: Duration) async throws -> Response {
        let query = request.uri.queryParameters
        var status: WorkflowStatus?
        if let text = query["status"] {
            guard let parsed = WorkflowStatus(rawValue: String(text)) else {
                throw GatewayError(.badRequest, code: "badRequest", "status '\(text)' is not a workflow status")
            }
            status = parsed
        }
        let limit = try positiveInteger("limit", of: request) ?? 1_000
        let found = try await workflows.list(
            type: query["type"].map(String.init), status: status, limit: limit, timeout: timeout)
        return text(WorkflowJSON.list(found))
    }

    /// Positive integer query parameter `name`, if present.
    private func positiveInteger(_ name: String, of request: Request) throws -> Int? {
        guard let text = request.uri.queryParameters[name[...]] else { return nil }
        guard let value = Int(text), value > 0 else {
            throw GatewayError(.badRequest, code: "badRequest", "\(name) '\(text)' is not a positive integer")
        }
        return value
    }

    private func text(_ json: String, status: HTTPResponse.Status = .ok) -> Response {
        self.json(Array(json.utf8), status: status)
    }
}
