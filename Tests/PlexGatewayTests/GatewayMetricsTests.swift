import Foundation
import HTTPTypes
import Metrics
import PlexExamples
import PlexGateway
import PlexSpaces
import PlexTestKit
import Prometheus
import Testing

/// The test process's one metrics registry: `MetricsSystem` is bootstrapped once per process.
enum TestMetrics {
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory.plex(registry: registry))
        return registry
    }()
}

/// One scrape of `/metrics`: each sample line's value by its series (`name{labels}`).
struct Scrape {
    var samples: [String: Double] = [:]
    var text: String

    init(_ text: String) {
        self.text = text
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            samples[String(line[..<space])] = value
        }
    }

    subscript(_ series: String) -> Double { samples[series] ?? 0 }
}

@Suite("HTTP gateway: metrics", .timeLimit(.minutes(2)))
struct GatewayMetricsTests {
    @Test(
        "after traffic, /metrics counts calls by type and outcome, times them, and shows journal, members and workflows"
    )
    func metricsAfterTraffic() async throws {
        let registry = TestMetrics.registry
        try await withGateway(metrics: registry) { cluster, client in
            func scrape() async throws -> Scrape {
                let answer = try await client.send(.get, "/metrics")
                #expect(answer.status == .ok, "\(answer.text)")
                #expect(answer.headers[.contentType]?.hasPrefix("text/plain") == true)
                return Scrape(answer.text)
            }
            let before = try await scrape()
            // Calls owned by node 0, whose process-wide instruments count them like any other node's.
            for _ in 0..<5 {
                let answer = try await client.send(
                    .post, "/v1/actors/durable-counter/m1", body: #"{"increment":{"by":1}}"#)
                #expect(answer.status == .ok)
            }
            let failed = try await client.send(.post, "/v1/actors/ledger/m2", body: #"{"withdraw":{"amount":5}}"#)
            #expect(failed.status == .internalServerError)
            let started = try await client.send(
                .post, "/v1/workflows/order/metrics-1", body: #"{"order":"m","amount":5}"#)
            #expect(started.status == .ok)
            _ = try await client.send(.get, "/v1/workflows/metrics-1/result?wait_ms=20000")

            let after = try await scrape()
            let ok = #"plex_actor_calls_total{type="durable-counter",outcome="ok"}"#
            #expect(after[ok] - before[ok] >= 5, "\(ok)")
            let failure = #"plex_actor_calls_total{type="ledger",outcome="remoteFailure"}"#
            #expect(after[failure] - before[failure] >= 1)
            let timed = #"plex_actor_call_duration_seconds_count{type="durable-counter"}"#
            #expect(after[timed] - before[timed] >= 5)
            #expect(
                after["plex_journal_commit_duration_seconds_count"]
                    > before["plex_journal_commit_duration_seconds_count"])
            #expect(after["plex_journal_commit_entries_sum"] > before["plex_journal_commit_entries_sum"])
            #expect(after["plex_journal_size_bytes"] > 0)
            #expect(after[#"plex_cluster_members{state="up"}"#] == Double(cluster.nodes.count))
            #expect(after["plex_activations"] >= 1)
            let workflows = #"plex_workflows_started_total{type="order"}"#
            #expect(after[workflows] - before[workflows] >= 1)
            let closed = #"plex_workflows_closed_total{type="order",status="completed"}"#
            #expect(after[closed] - before[closed] >= 1)
            #expect(after[#"plex_actor_activations_total{type="ledger"}"#] >= 1)
            // Bounded labels: no actor key or instance id is ever a label.
            #expect(!after.text.contains("m1") && !after.text.contains("metrics-1"))
        }
    }

    @Test("without a registry /metrics answers 404; with a token it needs the token unless opened")
    func metricsAccess() async throws {
        try await withGateway(nodes: 1) { _, client in
            let answer = try await client.send(.get, "/metrics")
            #expect(answer.status == .notFound)
        }
        let closed = GatewayConfiguration(bearerToken: "tok-1")
        try await withGateway(nodes: 1, configuration: closed, metrics: TestMetrics.registry) {
            _, client async throws in
            #expect(try await client.send(.get, "/metrics").status == .unauthorized)
            #expect(try await client.send(.get, "/metrics", headers: [.authorization: "Bearer tok-1"]).status == .ok)
        }
        let open = GatewayConfiguration(bearerToken: "tok-1", metricsWithoutToken: true)
        try await withGateway(nodes: 1, configuration: open, metrics: TestMetrics.registry) { _, client async throws in
            #expect(try await client.send(.get, "/metrics").status == .ok)
            #expect(try await client.send(.get, "/v1/cluster").status == .unauthorized)
        }
    }

    @Test("a call refused because the mailbox is full answers 429 and is counted as overloaded")
    func overloadedCounted() async throws {
        let registry = TestMetrics.registry
        try await withGateway(
            nodes: 1, setup: { $0.activation.maximumMailboxDepth = 1 }, metrics: registry
        ) { cluster, client in
            let series = #"plex_actor_calls_total{type="sleeper",outcome="overloaded"}"#
            let before = Scrape(try await client.send(.get, "/metrics").text)[series]
            // One sleeps, one waits behind it (the limit), the rest are refused.
            let statuses = try await withThrowingTaskGroup(of: HTTPResponse.Status.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        try await client.send(.post, "/v1/actors/sleeper/full", body: #"{"milliseconds":300}"#).status
                    }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let refused = statuses.filter { $0 == .tooManyRequests }.count
            #expect(refused >= 1, "\(statuses)")
            #expect(statuses.allSatisfy { $0 == .ok || $0 == .tooManyRequests }, "\(statuses)")
            let after = Scrape(try await client.send(.get, "/metrics").text)[series]
            #expect(after - before == Double(refused), "every refusal counted once")
        }
    }

    @Test("a durable call whose entry cannot be kept is counted as storageFailure, not ok")
    func storageFailureCounted() async throws {
        let registry = TestMetrics.registry
        try await withGateway(nodes: 1, setup: { $0.journal.maximumBytes = 256 * 1024 }, metrics: registry) {
            _, client in
            // A type of its own: other suites' ledger calls, counted by the same registry, would skew the count.
            let ok = #"plex_actor_calls_total{type="metered-ledger",outcome="ok"}"#
            let failed = #"plex_actor_calls_total{type="metered-ledger",outcome="storageFailure"}"#
            let before = Scrape(try await client.send(.get, "/metrics").text)
            var acknowledged = 0
            var refusal: Answer?
            let padding = String(repeating: "x", count: 900)
            for i in 0..<10_000 where refusal == nil {
                // Large idempotency keys make large rows, so the journal's cap is reached after a few hundred.
                let answer = try await client.send(
                    .post, "/v1/actors/metered-ledger/full-\(i % 8)", body: #"{"deposit":{"amount":1}}"#,
                    headers: [.idempotencyKey: "\(padding)-\(i)"])
                if answer.status == .ok { acknowledged += 1 } else { refusal = answer }
            }
            #expect(refusal?.errorCode == "storageFailure", "\(refusal?.text ?? "")")
            let after = Scrape(try await client.send(.get, "/metrics").text)
            #expect(after[ok] - before[ok] == Double(acknowledged), "only the kept calls count as ok")
            #expect(after[failed] - before[failed] >= 1)
        }
    }
}
