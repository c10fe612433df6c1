internal import HTTPTypes
internal import Hummingbird
internal import Tracing

extension Gateway {
    /// Answers a request in a server span named by its route's template (`POST /v1/actors/{type}/{key}`: the
    /// name stays low-cardinality), child of the trace context the request's headers carry (W3C
    /// `traceparent` for OpenTelemetry). The call it makes carries the span on to the actor's node.
    func traced(
        _ route: GatewayRoute, _ request: Request, tracer: any Tracer, _ answer: () async -> Response
    ) async -> Response {
        var parent = ServiceContext.current ?? .topLevel
        // The tracer sees the headers without credentials: a propagator may log its carrier (swift-otel does, when
        // a traceparent does not parse), and the bearer token must never reach a log.
        var carrier = request.headers
        carrier[.authorization] = nil
        carrier[.proxyAuthorization] = nil
        carrier[.cookie] = nil
        tracer.extract(carrier, into: &parent, using: HeaderExtractor())
        let span = tracer.startAnySpan("\(route.method.rawValue) \(route.path)", context: parent, ofKind: .server)
        defer { span.end() }
        span.attributes["http.request.method"] = route.method.rawValue
        span.attributes["http.route"] = route.path
        span.attributes["url.path"] = request.uri.path
        span.attributes["plex.node.id"] = node.nodeID.rawValue
        let response = await ServiceContext.withValue(span.context) { await answer() }
        span.attributes["http.response.status_code"] = Int(response.status.code)
        if response.status.code >= 500 { span.setStatus(SpanStatus(code: .error)) }
        return response
    }
}

/// Reads trace fields from request headers.
struct HeaderExtractor: Extractor {
    func extract(key: String, from carrier: HTTPFields) -> String? {
        HTTPField.Name(key).flatMap { carrier[$0] }
    }
}
