internal import HTTPTypes
internal import Hummingbird

/// What every request passes first: the bearer token check, and JSON error bodies for what no route answers
/// (404, and 405 with `Allow` for a known path with another method).
struct GatewayMiddleware<Context: RequestContext>: RouterMiddleware {
    /// The token requests must carry; `nil` lets every request through.
    let token: String?
    /// Whether `/metrics` answers without the token.
    let metricsOpen: Bool

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response)
        async throws -> Response
    {
        let segments = request.uri.path.split(separator: "/")
        if let token, !isOpen(segments), !Self.authorized(request.headers[.authorization], token: token) {
            var response = GatewayError(.unauthorized, code: "unauthorized", "a valid bearer token is required")
                .response
            response.headers[.wwwAuthenticate] = #"Bearer realm="plex""#
            return response
        }
        do {
            return try await next(request, context)
        } catch let error as HTTPError where error.status == .notFound {
            let allowed = GatewayRoute.allCases.filter { $0.matches(segments) }.map(\.method)
            if allowed.contains(request.method) {
                // A route with this method matches the path's shape, but a constant segment of another route
                // took it first (`POST /v1/workflows/order/result`): the id is one of the routes' own words.
                return GatewayError(
                    .badRequest, code: "badRequest",
                    "\(request.uri.path): a workflow id cannot be result, history, events, queries, cancel or terminate"
                ).response
            }
            guard !allowed.isEmpty else {
                return GatewayError(.notFound, code: "notFound", "no route for \(request.method) \(request.uri.path)")
                    .response
            }
            var response = GatewayError(
                .methodNotAllowed, code: "methodNotAllowed",
                "\(request.uri.path) answers \(allowed.map(\.rawValue).joined(separator: ", ")), not \(request.method)"
            ).response
            response.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
            return response
        } catch {
            return GatewayError.from(error).response
        }
    }

    private func isOpen(_ segments: [Substring]) -> Bool {
        if metricsOpen && segments == ["metrics"] { return true }
        return GatewayRoute.allCases.contains { $0.isOpen && $0.matches(segments) }
    }

    /// Whether `header` is `Bearer TOKEN`, compared in time that does not depend on where they differ.
    static func authorized(_ header: String?, token: String) -> Bool {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return false }
        let given = Array(header.utf8.dropFirst(7))
        let expected = Array(token.utf8)
        guard given.count == expected.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(given, expected) { difference |= a ^ b }
        return difference == 0
    }
}
