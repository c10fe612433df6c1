internal import HTTPTypes
public import Hummingbird
public import Logging
internal import NIOCore
public import PlexCluster
internal import PlexCore
internal import PlexWorkflow
public import Prometheus

/// A node's HTTP gateway: JSON over HTTP to any actor or workflow of the cluster, through whichever node
/// receives the request (it routes the call to the owner), and the cluster's status and health.
///
/// ```swift
/// let gateway = try Gateway(node: node, configuration: GatewayConfiguration(port: 8080))
/// try await gateway.application().run()
/// ```
///
/// Routes are listed in ``GatewayRoute`` and described by the OpenAPI document at `/openapi.json`. Errors
/// answer with a JSON body `{"error":{"code":…,"message":…}}` and the status users expect: 400 for a request
/// that does not decode, 404 for an unknown actor type or workflow, 413 for a body over the limit, 429 when
/// overloaded, 503 with `Retry-After` when the owner is unreachable, 504 on timeout, 500 when the actor's
/// handler failed (with its own code as `actorCode`).
public struct Gateway: Sendable {
    public let node: PlexNode
    public let configuration: GatewayConfiguration
    let workflows: WorkflowClient
    let logger: Logger
    /// Where `/metrics` reads the process's instruments from; `nil`: the route answers 404.
    let metrics: PrometheusCollectorRegistry?
    let gauges: ScrapedGauges
    /// The workflow result long polls in progress.
    let resultWaits = ResultWaits()

    /// A gateway for `node`.
    /// - Parameter metrics: The registry the process's `MetricsSystem` reports to (see
    ///   `PrometheusMetricsFactory.plex(registry:)`), served at `/metrics`.
    /// - Throws: ``GatewayConfigurationError`` when `configuration` does not validate.
    public init(
        node: PlexNode, configuration: GatewayConfiguration, metrics: PrometheusCollectorRegistry? = nil,
        logger: Logger = Logger(label: "plex.gateway")
    ) throws(GatewayConfigurationError) {
        self.metrics = metrics
        self.gauges = ScrapedGauges()
        try configuration.validate()
        self.node = node
        self.configuration = configuration
        self.workflows = WorkflowClient(node: node)
        node.keepRecentCalls()  // for the dashboard
        var logger = logger
        logger[metadataKey: "node.id"] = "\(node.nodeID)"
        self.logger = logger
    }

    /// The gateway's routes and middleware.
    public func router() -> Router<GatewayRequestContext> {
        let router = Router(context: GatewayRequestContext.self)
        router.add(
            middleware: GatewayMiddleware(
                token: configuration.bearerToken, metricsOpen: configuration.metricsWithoutToken))
        for route in GatewayRoute.allCases {
            router.on(RouterPath(route.routerPath), method: route.method) { request, context -> Response in
                guard let tracer = node.tracer else { return await answer(route, request, context) }
                return await traced(route, request, tracer: tracer) { await answer(route, request, context) }
            }
        }
        return router
    }

    /// The answer to a request on `route`: its response, or its error's.
    func answer(_ route: GatewayRoute, _ request: Request, _ context: GatewayRequestContext) async -> Response {
        do {
            return try await respond(to: route, request, context)
        } catch {
            return GatewayError.from(error).response
        }
    }

    func respond(to route: GatewayRoute, _ request: Request, _ context: GatewayRequestContext) async throws -> Response
    {
        switch route {
        case .callActor: return try await callActor(request, context)
        case .startWorkflow, .listWorkflows, .describeWorkflow, .purgeWorkflow, .workflowResult, .workflowHistory,
            .signalWorkflow, .queryWorkflow, .cancelWorkflow, .terminateWorkflow:
            return try await workflow(route, request, context)
        case .cluster: return try json(JSONOutput.encode(node.clusterStatus))
        case .health: return json(Array(#"{"status":"alive"}"#.utf8))
        case .ready:
            guard node.isJoined, node.stoppedBecause == nil else {
                throw GatewayError(
                    .serviceUnavailable, code: "notReady", "\(node.nodeID) has not joined its cluster", retryAfter: 1)
            }
            return json(Array(#"{"status":"ready"}"#.utf8))
        case .openAPI: return json(OpenAPIDocument.bytes)
        case .metrics: return try metricsResponse()
        case .dashboard, .dashboardWorkflow: return try await dashboard(route, request, context)
        }
    }

    // MARK: Actors

    /// The runtime's namespace: its actor types and the idempotency keys of its own messages.
    static let reservedPrefix = "plex."

    /// `POST /v1/actors/{type}/{key}`: the body is the actor's request in JSON; the answer its reply.
    func callActor(_ request: Request, _ context: GatewayRequestContext) async throws -> Response {
        let call = try actorCall(
            type: try parameter("type", of: .callActor, context), key: try parameter("key", of: .callActor, context),
            idempotencyKey: request.headers[.idempotencyKey],
            timeout: request.uri.queryParameters["timeout_ms"].map(String.init), request.headers[.plexTimeout])
        return json(try await perform(call, body: try await self.body(of: request)))
    }

    /// The call a `POST /v1/actors/{type}/{key}` asks for, from its (decoded) path parameters and headers.
    /// - Throws: ``GatewayError`` for an internal type, a reserved idempotency key or a bad timeout.
    func actorCall(type: String, key: String, idempotencyKey: String?, timeout query: String?, _ header: String?)
        throws(GatewayError) -> ActorCall
    {
        // The runtime's own names are not for HTTP callers. Its types (workflow instances, activities, the index)
        // change state only through their APIs: a raw message could finish a workflow with any output, or run an
        // activity with any input. Its idempotency keys mark its own messages (a reminder's delivery).
        guard !type.hasPrefix(Self.reservedPrefix) else {
            throw GatewayError(
                .notFound, code: "unknownActorType", "actor type '\(type)' is internal; use the /v1/workflows routes")
        }
        if let idempotencyKey, idempotencyKey.hasPrefix(Self.reservedPrefix) {
            throw GatewayError(
                .badRequest, code: "badRequest", "idempotency keys starting '\(Self.reservedPrefix)' are the runtime's")
        }
        return ActorCall(
            id: ActorID(typeName: type, key: key),
            options: CallOptions(timeout: try timeout(query: query, header: header), idempotencyKey: idempotencyKey))
    }

    /// Runs `call` with the JSON request `body`; returns the actor's JSON reply.
    /// - Parameter executor: Where a local turn runs (the connection's event loop, if the request came on one).
    func perform(_ call: ActorCall, body: [UInt8], on executor: (any TaskExecutor)? = ConnectionExecutor.current)
        async throws(GatewayError) -> [UInt8]
    {
        do {
            return try await node.ask(call.id, json: body, options: call.options, on: executor)
        } catch {
            // Say where JSON that does not parse goes wrong, rather than which type it did not decode as.
            if error.code == .invalidRequest, let syntax = JSONSyntax.error(in: body) {
                throw GatewayError(.badRequest, code: "invalidRequest", "the request body is not JSON: \(syntax)")
            }
            throw GatewayError(error)
        }
    }

    // MARK: Helpers

    func json(_ bytes: [UInt8], status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "application/json"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// The request's body, up to the configured limit.
    func body(of request: Request) async throws -> [UInt8] {
        var request = request
        let buffer = try await request.collectBody(upTo: configuration.maximumBodySize)
        return Array(buffer.readableBytesView)
    }

    /// Path parameter `name` of `route`, percent-decoded.
    func parameter(_ name: String, of route: GatewayRoute, _ context: GatewayRequestContext) throws -> String {
        guard let routerName = route.routerParameter(name), let raw = context.parameters.get(routerName),
            let value = raw[...].percentDecoded
        else {
            throw GatewayError(.badRequest, code: "badRequest", "the path parameter '\(name)' is missing or malformed")
        }
        return value
    }

    /// The call's timeout: `timeout_ms` in the query or the `Plex-Timeout-Ms` header, else the default.
    func timeout(of request: Request) throws(GatewayError) -> Duration {
        try timeout(
            query: request.uri.queryParameters["timeout_ms"].map(String.init), header: request.headers[.plexTimeout])
    }

    /// The timeout `query` (`timeout_ms`) or else `header` (`Plex-Timeout-Ms`) asks for, else the default.
    func timeout(query: String?, header: String?) throws(GatewayError) -> Duration {
        guard let text = query ?? header else { return configuration.defaultTimeout }
        guard let milliseconds = Int(text), milliseconds > 0 else {
            throw GatewayError(.badRequest, code: "badRequest", "timeout_ms '\(text)' is not a positive integer")
        }
        return min(.milliseconds(milliseconds), configuration.maximumTimeout)
    }
}

/// An actor call taken from an HTTP request.
struct ActorCall: Sendable {
    var id: ActorID
    var options: CallOptions
}

extension HTTPField.Name {
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    static let plexTimeout = HTTPField.Name("Plex-Timeout-Ms")!
}
