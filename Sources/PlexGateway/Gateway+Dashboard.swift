internal import FoundationEssentials
internal import HTTPTypes
internal import Hummingbird
internal import NIOCore
internal import PlexCluster
internal import PlexWorkflow

extension Gateway {
    /// `GET /dashboard` and `GET /dashboard/workflows/{id}`: the operator's pages (see ``DashboardPage``).
    func dashboard(_ route: GatewayRoute, _ request: Request, _ context: GatewayRequestContext) async throws
        -> Response
    {
        let now = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        let timeout = try self.timeout(of: request)
        if route == .dashboardWorkflow {
            let id = try parameter("id", of: route, context)
            let description = try await workflows.describe(id: id, history: true, timeout: timeout)
            guard description.status != .pending else {
                return html(DashboardPage.notFound(workflow: id), status: .notFound)
            }
            return html(DashboardPage.workflow(description, now: now))
        }
        let workflows: Result<[WorkflowSummary], any Error>
        do {
            workflows = .success(try await self.workflows.list(limit: 1_000, timeout: timeout))
        } catch {
            workflows = .failure(error)
        }
        let calls = node.recentCalls
        let page = DashboardPage.Overview(
            status: node.clusterStatus, activationsByType: node.activationsByType, slowest: calls.slowest,
            failed: calls.failed, workflows: workflows, now: now)
        return html(DashboardPage.overview(page))
    }

    private func html(_ text: String, status: HTTPResponse.Status = .ok) -> Response {
        Response(
            status: status, headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store"],
            body: ResponseBody(byteBuffer: ByteBuffer(string: text)))
    }
}
