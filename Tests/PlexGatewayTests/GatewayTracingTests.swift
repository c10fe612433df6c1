import HTTPTypes
import InMemoryTracing
import PlexExamples
import PlexGateway
import PlexSpaces
import PlexTestKit
import Testing
import Tracing

@Suite("HTTP gateway: tracing", .timeLimit(.minutes(2)))
struct GatewayTracingTests {
    /// One in-memory tracer per node.
    final class Tracers: Sendable {
        let byNode: [String: InMemoryTracer] = ["node-0": InMemoryTracer(), "node-1": InMemoryTracer()]
        var all: [FinishedInMemorySpan] { byNode.values.flatMap(\.finishedSpans) }

        /// The finished spans of trace `id`, once `done` says they are all there (or 10 s passed).
        func spans(
            ofTrace id: String, until done: ([FinishedInMemorySpan]) -> Bool
        ) async throws -> [FinishedInMemorySpan] {
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(10)
            while clock.now < deadline {
                let spans = all.filter { $0.traceID == id }
                if done(spans) { return spans }
                try await Task.sleep(for: .milliseconds(10))
            }
            return all.filter { $0.traceID == id }
        }
    }

    @Test("a request's trace context (its headers) continues through the gateway to the actor on another node")
    func requestToOwner() async throws {
        let tracers = Tracers()
        try await withGateway(setup: { $0.tracer = $0.nodeID.flatMap { tracers.byNode[$0.rawValue] } }) {
            cluster, client in
            let key = key(ofType: Counter.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0))
            var headers = HTTPFields()
            headers[HTTPField.Name(InMemoryTracer.traceIDKey)!] = "client-trace"
            headers[HTTPField.Name(InMemoryTracer.spanIDKey)!] = "client-span"
            let answer = try await client.send(
                .post, "/v1/actors/counter/\(key)", body: #"{"increment":{}}"#, headers: headers)
            #expect(answer.status == .ok)
            let spans = try await tracers.spans(ofTrace: "client-trace") { spans in
                spans.contains { $0.operationName == "actor counter" }
            }
            let server = try #require(spans.first { $0.operationName == "POST /v1/actors/{type}/{key}" }, "\(spans)")
            #expect(server.kind == .server && server.parentSpanID == "client-span")
            #expect(server.attributes["http.response.status_code"]?.toSpanAttribute() == .int64(200))
            let hop = try #require(spans.first { $0.operationName == "call counter" })
            #expect(hop.parentSpanID == server.spanID)
            let turn = try #require(spans.first { $0.operationName == "actor counter" })
            #expect(turn.parentSpanID == hop.spanID)
            #expect(tracers.byNode["node-1"]!.finishedSpans.contains { $0.spanID == turn.spanID }, "on the owner")
        }
    }

    @Test("a workflow's activity attempts are spans carrying the instance's id")
    func workflowActivities() async throws {
        let tracers = Tracers()
        try await withGateway(setup: { $0.tracer = $0.nodeID.flatMap { tracers.byNode[$0.rawValue] } }) {
            _, client in
            let started = try await client.send(
                .post, "/v1/workflows/order/traced-1", body: #"{"order":"traced-1","amount":50}"#)
            #expect(started.status == .created || started.status == .ok, "\(started.text)")
            let result = try await client.send(.get, "/v1/workflows/traced-1/result?wait_ms=20000")
            #expect(result.status == .ok, "\(result.text)")
            let activities = tracers.all.filter {
                $0.operationName.hasPrefix("activity ")
                    && $0.attributes["plex.workflow.id"]?.toSpanAttribute() == .string("traced-1")
            }
            // One span per attempt: as many as the history's activity attempts, named after them.
            let history = try await client.send(.get, "/v1/workflows/traced-1/history")
            let steps = try #require(try history.object["history"] as? [[String: any Sendable]])
            let attempted = steps.filter { $0["kind"] as? String == "activity" }
            #expect(!attempted.isEmpty)
            #expect(activities.count == attempted.reduce(0) { $0 + ($1["attempts"] as? Int ?? 0) })
            #expect(
                Set(activities.map(\.operationName))
                    == Set(attempted.compactMap { ($0["name"] as? String).map { "activity \($0)" } }))
            #expect(
                activities.allSatisfy { $0.attributes["plex.workflow.type"]?.toSpanAttribute() == .string("order") })
        }
    }
}
