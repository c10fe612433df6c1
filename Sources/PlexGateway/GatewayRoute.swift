public import HTTPTypes

/// Every route the gateway answers: one table for the router, the `405 Method Not Allowed` answers, and the
/// test that keeps `openapi.json` in step with the code.
public enum GatewayRoute: String, CaseIterable, Sendable {
    case callActor
    case startWorkflow
    case listWorkflows
    case describeWorkflow
    case purgeWorkflow
    case workflowResult
    case workflowHistory
    case signalWorkflow
    case queryWorkflow
    case cancelWorkflow
    case terminateWorkflow
    case cluster
    case health
    case ready
    case openAPI
    case metrics
    case dashboard
    case dashboardWorkflow

    /// The route's method.
    public var method: HTTPRequest.Method {
        switch self {
        case .callActor, .startWorkflow, .signalWorkflow, .cancelWorkflow, .terminateWorkflow: .post
        case .purgeWorkflow: .delete
        default: .get
        }
    }

    /// The route's path, with `{name}` for a parameter (as OpenAPI writes it).
    public var path: String {
        switch self {
        case .callActor: "/v1/actors/{type}/{key}"
        case .startWorkflow: "/v1/workflows/{type}/{id}"
        case .listWorkflows: "/v1/workflows"
        case .describeWorkflow, .purgeWorkflow: "/v1/workflows/{id}"
        case .workflowResult: "/v1/workflows/{id}/result"
        case .workflowHistory: "/v1/workflows/{id}/history"
        case .signalWorkflow: "/v1/workflows/{id}/events/{name}"
        case .queryWorkflow: "/v1/workflows/{id}/queries/{name}"
        case .cancelWorkflow: "/v1/workflows/{id}/cancel"
        case .terminateWorkflow: "/v1/workflows/{id}/terminate"
        case .cluster: "/v1/cluster"
        case .health: "/healthz"
        case .ready: "/readyz"
        case .openAPI: "/openapi.json"
        case .metrics: "/metrics"
        case .dashboard: "/dashboard"
        case .dashboardWorkflow: "/dashboard/workflows/{id}"
        }
    }

    /// Whether the route answers without the bearer token (the probes of a process supervisor).
    var isOpen: Bool { self == .health || self == .ready }

    /// The path as the router writes it: a parameter is named by its position (`:p2`), because the router's
    /// tree holds one name per position and `/v1/workflows/{type}/{id}` shares a position with
    /// `/v1/workflows/{id}/result`. A constant segment wins over a parameter, so a workflow started over HTTP
    /// cannot have the id `cancel` or `terminate` (``startWorkflow``'s second segment).
    var routerPath: String {
        var result = ""
        for (index, segment) in path.split(separator: "/").enumerated() {
            result += "/"
            result += segment.hasPrefix("{") ? ":p\(index)" : String(segment)
        }
        return result
    }

    /// The router's name (``routerPath``) for the parameter OpenAPI calls `name`.
    func routerParameter(_ name: String) -> String? {
        path.split(separator: "/").firstIndex(of: "{\(name)}"[...]).map { "p\($0)" }
    }

    /// Whether `path` (split in segments) has this route's shape.
    func matches(_ segments: [Substring]) -> Bool {
        let pattern = path.split(separator: "/")
        guard pattern.count == segments.count else { return false }
        return zip(pattern, segments).allSatisfy { $0.hasPrefix("{") || $0 == $1 }
    }
}
