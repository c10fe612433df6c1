import Foundation
import Hummingbird
import PlexExamples
import PlexSpaces
import PlexTestKit
import Synchronization
import Testing

/// A stand-in OpenTelemetry collector: it keeps the bodies of the OTLP/HTTP trace exports it receives.
final class TraceCollector: Sendable {
    private let bodies = Mutex<[String]>([])
    var received: [String] { bodies.withLock { $0 } }

    /// Runs the collector on 127.0.0.1 and a free port, handing the port to `body`.
    func run(_ body: @Sendable @escaping (Int) async throws -> Void) async throws {
        let router = Router()
        router.post("/v1/traces") { request, _ -> Response in
            let buffer = try await request.body.collect(upTo: 16 << 20)
            self.bodies.withLock { $0.append(String(buffer: buffer)) }
            return Response(
                status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: .init(string: "{}")))
        }
        let (ports, bound) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { bound.yield($0.localAddress?.port ?? 0) })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await application.run() }
            defer { group.cancelAll() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            try await body(port)
        }
    }
}

@Suite(
    "Tracing across processes", .enabled(if: NodeProcess.binary != nil, "set PLEX_INTEGRATION=1 and PLEX_BIN"),
    .timeLimit(.minutes(2)))
struct TracingIntegrationTests {
    let binary = NodeProcess.binary ?? ""

    @Test("with --otel-endpoint, an HTTP request to one node for an actor on another is one trace at the collector")
    func oneTraceAcrossNodes() async throws {
        let collector = TraceCollector()
        try await collector.run { port in
            let cluster = ProcessCluster(name: "otel", nodes: 2, binary: binary)
            cluster.arguments = ["--otel-endpoint", "http://127.0.0.1:\(port)"]
            // JSON (to read it here) and a short batch delay; the rest is the OTLP defaults.
            cluster.environment = ["OTEL_EXPORTER_OTLP_PROTOCOL": "http/json", "OTEL_BSP_SCHEDULE_DELAY": "100"]
            try await cluster.run {
                try await cluster.start()
                let gateway = try #require(cluster.gateways["n1"])
                let key = (0..<1000).map { "t-\($0)" }.first {
                    (try? cluster.owner(of: ActorID(typeName: Counter.typeName, key: $0))) == "n2"
                }!
                // The caller's W3C trace context: both nodes' spans must join its trace.
                let traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
                let answer = try await request(
                    .POST, gateway, "/v1/actors/counter/\(key)", body: #"{"increment":{}}"#,
                    headers: [("traceparent", "00-\(traceID)-00f067aa0ba902b7-01")])
                #expect(answer.status == 200, "\(answer.body)")
                // OTLP/JSON writes ids in hex (the specification) or, from a plain protobuf JSON mapping, base64.
                let base64 = Data(
                    stride(from: 0, to: 32, by: 2).map {
                        UInt8(traceID.dropFirst($0).prefix(2), radix: 16)!
                    }
                ).base64EncodedString()
                func spans(named name: String) -> [String] {
                    collector.received.filter {
                        ($0.contains(traceID) || $0.contains(base64)) && $0.contains(name)
                    }
                }
                try await eventually("both nodes exported their spans of the trace", within: .seconds(20)) {
                    !spans(named: "POST /v1/actors/{type}/{key}").isEmpty && !spans(named: "actor counter").isEmpty
                }
                // The gateway's span and the hop come from n1, the turn from n2: different exports.
                let fromN1 = spans(named: "call counter").filter { $0.contains("\"n1\"") }
                let fromN2 = spans(named: "actor counter").filter { $0.contains("\"n2\"") }
                #expect(!fromN1.isEmpty && !fromN2.isEmpty, "\(collector.received.joined(separator: "\n"))")
            }
        }
    }

    @Test("the bearer token and the cluster secret reach no log: debug level, JSON, a traceparent that does not parse")
    func secretsStayOutOfLogs() async throws {
        let directory =
            FileManager.default.temporaryDirectory.path + "/plex-secret-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let secret = "never-log-this-secret-42"
        let token = "never-log-this-token-42"
        let node = try NodeProcess.launch(
            binary,
            [
                "node", "--data-dir", directory, "--bootstrap", "--listen", "127.0.0.1:0", "--http-listen",
                "127.0.0.1:0", "--log-level", "debug", "--log-format", "json",
                // A collector that is not there: the exporter fails and says so, in the log.
                "--otel-endpoint", "http://127.0.0.1:9",
            ],
            environment: ["PLEX_CLUSTER_SECRET": secret, "PLEX_HTTP_TOKEN": token])
        defer { node.kill9() }
        let ready = try await node.waitUntilReady()
        let gateway = try #require(ready.http)
        let answer = try await request(
            .POST, gateway, "/v1/actors/counter/s", body: #"{"increment":{}}"#,
            headers: [("Authorization", "Bearer \(token)"), ("traceparent", "bogus")])
        #expect(answer.status == 200, "\(answer.body)")
        node.terminate()
        #expect(try await node.waitForExit() == 0)
        let log = node.standardError
        #expect(!log.isEmpty)
        #expect(!log.contains(token), "the token was logged")
        #expect(!log.contains(secret), "the secret was logged")
        let bytes = Array(secret.utf8).prefix(6).map(String.init).joined(separator: ", ")
        #expect(!log.contains(bytes), "the secret was logged as bytes")
        for line in log.split(separator: "\n") {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) != nil, "not JSON: \(line)")
        }
    }
}
