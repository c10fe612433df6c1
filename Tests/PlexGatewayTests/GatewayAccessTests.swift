import HTTPTypes
import Hummingbird
import PlexTestKit
import Testing

@testable import PlexGateway

@Suite("HTTP gateway: access", .timeLimit(.minutes(2)))
struct GatewayAccessTests {
    static let token = "s3cret-token-for-tests"

    /// One request per route, with made-up parameters.
    static func example(_ route: GatewayRoute) -> String {
        route.path.replacingOccurrences(of: "{type}", with: "counter").replacingOccurrences(of: "{key}", with: "k")
            .replacingOccurrences(of: "{id}", with: "w1").replacingOccurrences(of: "{name}", with: "n")
    }

    @Test("with a token configured, no route but the probes answers without it, or with a wrong one")
    func everyRouteNeedsTheToken() async throws {
        let configuration = GatewayConfiguration(bearerToken: Self.token)
        try await withGateway(nodes: 1, configuration: configuration) { _, client in
            for route in GatewayRoute.allCases {
                let uri = Self.example(route)
                let open = route == .health || route == .ready
                let missing = try await client.send(route.method, uri, body: "{}")
                let wrong = try await client.send(
                    route.method, uri, body: "{}", headers: [.authorization: "Bearer \(Self.token)x"])
                let lowercaseScheme = try await client.send(
                    route.method, uri, body: "{}", headers: [.authorization: "bearer \(Self.token.dropLast())"])
                for answer in [missing, wrong, lowercaseScheme] {
                    if open {
                        #expect(answer.status == .ok, "\(route) is a probe")
                    } else {
                        #expect(answer.status == .unauthorized, "\(route.method) \(uri) answered \(answer.status)")
                        #expect(answer.headers[.wwwAuthenticate] == #"Bearer realm="plex""#)
                        #expect(answer.errorCode == "unauthorized")
                        #expect(!answer.text.contains(Self.token), "the token is never echoed")
                    }
                }
            }
            // Unknown paths are refused before anything says whether they exist.
            #expect(try await client.send(.get, "/nowhere").status == .unauthorized)
            let allowed = try await client.send(
                .get, "/v1/cluster", headers: [.authorization: "Bearer \(Self.token)"])
            #expect(allowed.status == .ok)
            let post = try await client.send(
                .post, "/v1/actors/counter/k", body: #"{"increment":{}}"#,
                headers: [.authorization: "bearer \(Self.token)"])
            #expect(post.status == .ok, "the scheme is case-insensitive: \(post.text)")
        }
    }

    @Test("listening beyond loopback without a token is refused at configuration; loopback needs none")
    func configurationValidation() throws {
        #expect(throws: GatewayConfigurationError.self) {
            try GatewayConfiguration(host: "0.0.0.0", port: 8080).validate()
        }
        #expect(throws: GatewayConfigurationError.self) {
            try GatewayConfiguration(host: "0.0.0.0", bearerToken: "has space").validate()
        }
        #expect(throws: GatewayConfigurationError.self) { try GatewayConfiguration(port: 70_000).validate() }
        #expect(throws: GatewayConfigurationError.self) { try GatewayConfiguration(maximumBodySize: 0).validate() }
        #expect(throws: GatewayConfigurationError.self) {
            try GatewayConfiguration(defaultTimeout: .seconds(10), maximumTimeout: .seconds(1)).validate()
        }
        try GatewayConfiguration(host: "0.0.0.0", bearerToken: Self.token).validate()
        try GatewayConfiguration(host: "127.0.0.1").validate()
        try GatewayConfiguration(host: "::1").validate()
        try GatewayConfiguration(host: "127.8.9.10").validate()
        // A name that starts like a loopback address may resolve anywhere: it needs the token.
        for host in ["127.example.com", "127.0.0.1.nip.io", "1270.0.0.1", "127.0.0"] {
            #expect(throws: GatewayConfigurationError.self, "\(host)") {
                try GatewayConfiguration(host: host).validate()
            }
        }
        var h2c = GatewayConfiguration()
        h2c.plaintextHTTP2 = GatewayListener(host: "0.0.0.0", port: 0)
        #expect(throws: GatewayConfigurationError.self, "an h2c listener beyond loopback needs the token too") {
            try h2c.validate()
        }
        var noConnections = GatewayConfiguration()
        noConnections.maximumConnections = 0
        #expect(throws: GatewayConfigurationError.self) { try noConnections.validate() }
    }

    @Test("the token compare accepts exactly the token")
    func tokenCompare() {
        #expect(Probe.authorized("Bearer abc", token: "abc"))
        #expect(!Probe.authorized("Bearer abd", token: "abc"))
        #expect(!Probe.authorized("Bearer abcd", token: "abc"))
        #expect(!Probe.authorized("Basic abc", token: "abc"))
        #expect(!Probe.authorized(nil, token: "abc"))
    }
}

private typealias Probe = GatewayMiddleware<GatewayRequestContext>
