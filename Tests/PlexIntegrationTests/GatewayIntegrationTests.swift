import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import PlexExamples
import PlexSpaces
import PlexTestKit
import Testing

/// `method` to `http://ADDRESS/path`; the status and the body.
func request(
    _ method: HTTPMethod, _ address: String, _ path: String, body: String? = nil, headers: [(String, String)] = []
) async throws -> (status: Int, body: String) {
    var request = HTTPClientRequest(url: "http://\(address)\(path)")
    request.method = method
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let body { request.body = .bytes(ByteBuffer(string: body)) }
    let response = try await HTTPClient.shared.execute(request, timeout: .seconds(10))
    let bytes = try await response.body.collect(upTo: 1 << 20)
    return (Int(response.status.code), String(buffer: bytes))
}

/// The HTTP gateway of real `plex node` processes.
/// Enabled by `PLEX_INTEGRATION=1` and `PLEX_BIN` (scripts/test.sh sets both).
@Suite("HTTP gateway across processes", .serialized, .enabled(if: NodeProcess.binary != nil), .timeLimit(.minutes(3)))
struct GatewayIntegrationTests {
    let binary = NodeProcess.binary ?? ""

    @Test(
        "calls over HTTP through a node that does not own a durable counter: acknowledged increments survive kill -9 of the owner"
    )
    func durableCounterOverHTTP() async throws {
        let cluster = ProcessCluster(name: "http", nodes: 2, binary: binary)
        try await cluster.run {
            try await cluster.start()
            let gateway = try #require(cluster.gateways["n1"], "n1's ready line names its gateway")
            let key = (0..<1000).map { "web-\($0)" }.first {
                (try? cluster.owner(of: ActorID(typeName: DurableCounter.typeName, key: $0))) == "n2"
            }!
            let path = "/v1/actors/durable-counter/\(key)"
            for visit in 1...3 {
                let answer = try await request(
                    .POST, gateway, path, body: #"{"increment":{"by":1}}"#, headers: [("Idempotency-Key", "v\(visit)")])
                #expect(answer.status == 200, "\(answer.body)")
                #expect(answer.body.contains(#""node":"n2""#), "the owner ran it: \(answer.body)")
            }
            // A retry of an acknowledged request is answered, not applied again.
            let retry = try await request(
                .POST, gateway, path, body: #"{"increment":{"by":1}}"#, headers: [("Idempotency-Key", "v3")])
            #expect(retry.body.contains(#""value":3"#), "\(retry.body)")

            try await cluster.kill9("n2")
            let unreachable = try await request(.POST, gateway, path, body: #"{"get":{}}"#)
            #expect([503, 504].contains(unreachable.status), "owner down: \(unreachable.body)")
            try await cluster.start("n2")
            try await eventually("n2 serves the counter again, with every acknowledged increment", within: .seconds(20))
            {
                let answer = try await request(.POST, gateway, path, body: #"{"get":{}}"#)
                return answer.status == 200 && answer.body.contains(#""value":3"#)
            }
            // The restarted node's own gateway answers too, and both agree.
            let restarted = try #require(cluster.gateways["n2"])
            let direct = try await request(.POST, restarted, path, body: #"{"get":{}}"#)
            #expect(direct.body.contains(#""value":3"#), "\(direct.body)")
            #expect(try await request(.GET, restarted, "/readyz").status == 200)
        }
    }

    @Test(
        "a gateway beyond loopback without a token, or on a taken port, refuses to start; a token is asked of every caller"
    )
    func tokenRequiredBeyondLoopback() async throws {
        let directory = FileManager.default.temporaryDirectory.path + "/plex-http-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let base = ["node", "--data-dir", directory, "--bootstrap", "--listen", "127.0.0.1:0"]
        let secret = ["PLEX_CLUSTER_SECRET": "http-secret-0123456789"]
        let refused = try NodeProcess.launch(binary, base + ["--http-listen", "0.0.0.0:0"], environment: secret)
        #expect(try await refused.waitForExit() == 2, "bad configuration exits 2")
        #expect(refused.standardError.contains("bearer token"), "\(refused.standardError)")

        // With a token, a gateway on loopback asks for it too.
        let node = try NodeProcess.launch(
            binary, base + ["--http-listen", "127.0.0.1:0", "--log-format", "json"],
            environment: secret.merging(["PLEX_HTTP_TOKEN": "tok-123"]) { $1 })
        defer { node.kill9() }
        let ready = try await node.waitUntilReady()
        let gateway = try #require(ready.http)
        #expect(try await request(.GET, gateway, "/v1/cluster").status == 401)
        #expect(
            try await request(.GET, gateway, "/v1/cluster", headers: [("Authorization", "Bearer tok-123")]).status
                == 200)
        #expect(try await request(.GET, gateway, "/healthz").status == 200)
        #expect(!node.standardError.contains("tok-123"), "the token is never logged")
        // --log-format json: every line on stderr is one JSON object with the node's id.
        let lines = node.standardError.split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["level"] != nil && object?["message"] != nil, "\(line)")
        }
        #expect(lines.contains { $0.contains(#""node.id":"#) })
        // A second node whose gateway port is taken exits with one clear line.
        let taken = try NodeProcess.launch(
            binary,
            [
                "node", "--data-dir", directory + "-2", "--bootstrap", "--listen", "127.0.0.1:0", "--http-listen",
                gateway,
            ],
            environment: secret)
        defer { try? FileManager.default.removeItem(atPath: directory + "-2") }
        #expect(try await taken.waitForExit() == 2)
        #expect(taken.standardError.contains("http_listen: cannot listen on \(gateway)"), "\(taken.standardError)")
        node.terminate()
        #expect(try await node.waitForExit() == 0, "SIGTERM stops the node and its gateway")
    }

    @Test("--http2-listen adds an h2c listener named in the ready line; a taken h2c port or half a TLS pair exits 2")
    func http2Listener() async throws {
        let directory = FileManager.default.temporaryDirectory.path + "/plex-h2-\(UInt32.random(in: 0...UInt32.max))"
        defer {
            for suffix in ["", "-2", "-3"] { try? FileManager.default.removeItem(atPath: directory + suffix) }
        }
        func arguments(_ suffix: String, _ extra: [String]) -> [String] {
            ["node", "--data-dir", directory + suffix, "--bootstrap", "--listen", "127.0.0.1:0"] + extra
        }
        let secret = ["PLEX_CLUSTER_SECRET": "http-secret-0123456789"]
        let node = try NodeProcess.launch(
            binary, arguments("", ["--http-listen", "127.0.0.1:0", "--http2-listen", "127.0.0.1:0"]),
            environment: secret)
        defer { node.kill9() }
        let ready = try await node.waitUntilReady()
        let http2 = try #require(ready.http2, "the ready line names the h2c listener")
        #expect(ready.http != nil && ready.http != http2 && ready.http_tls == nil)
        #expect(try await request(.GET, try #require(ready.http), "/healthz").status == 200)

        let taken = try NodeProcess.launch(
            binary, arguments("-2", ["--http-listen", "127.0.0.1:0", "--http2-listen", http2]), environment: secret)
        #expect(try await taken.waitForExit() == 2)
        #expect(taken.standardError.contains("http2_listen: cannot listen on \(http2)"), "\(taken.standardError)")

        let half = try NodeProcess.launch(
            binary, arguments("-3", ["--http-tls-cert-file", directory + "/cert.pem"]), environment: secret)
        #expect(try await half.waitForExit() == 2)
        #expect(half.standardError.contains("http_tls_cert_file and http_tls_key_file"), "\(half.standardError)")
        node.terminate()
        #expect(try await node.waitForExit() == 0, "SIGTERM stops both listeners and the node")
    }

    @Test(
        "a result poll ends when its client goes and is answered when the node gets SIGTERM; /metrics counts the polls"
    )
    func resultPolls() async throws {
        let directory = FileManager.default.temporaryDirectory.path + "/plex-poll-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let node = try NodeProcess.launch(
            binary,
            [
                "node", "--data-dir", directory, "--bootstrap", "--listen", "127.0.0.1:0", "--http-listen",
                "127.0.0.1:0",
            ],
            environment: ["PLEX_CLUSTER_SECRET": "http-secret-0123456789"])
        defer { node.kill9() }
        let gateway = try #require(try await node.waitUntilReady().http)
        /// `plex_http_result_waits` as `/metrics` shows it.
        func waiting() async throws -> Int? {
            let metrics = try await request(.GET, gateway, "/metrics")
            let line = metrics.body.split(separator: "\n").first { $0.hasPrefix("plex_http_result_waits ") }
            return line.flatMap { Double($0.split(separator: " ").last ?? "") }.map { Int($0) }
        }
        let started = try await request(
            .POST, gateway, "/v1/workflows/order/p1", body: #"{"order":"p1","amount":5000}"#)
        #expect(started.status == 200, "\(started.body)")
        let path = "/v1/workflows/p1/result?wait_ms=60000"
        // A client that gives up: its connection closes, and the poll ends with it.
        let gone = Task { try await request(.GET, gateway, path) }
        try await eventually("the poll waits") { try await waiting() == 1 }
        gone.cancel()
        _ = await gone.result
        try await eventually("the poll ends with its client") { try await waiting() == 0 }
        // A poll in hand when the node stops is answered with the status as it is.
        let polled = Task { try await request(.GET, gateway, path) }
        try await eventually("the poll waits") { try await waiting() == 1 }
        node.terminate()
        let answer = try await polled.value
        #expect(answer.status == 202 && answer.body.contains(#""status":"running""#), "\(answer)")
        #expect(try await node.waitForExit() == 0)
    }
}
