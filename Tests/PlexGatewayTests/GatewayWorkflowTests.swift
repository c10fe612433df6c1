import Foundation
import HTTPTypes
import PlexExamples
import PlexGateway
import PlexSpaces
import PlexTestKit
import Testing

@Suite("HTTP gateway: workflows", .timeLimit(.minutes(2)))
struct GatewayWorkflowTests {
    /// An instance id owned by node 1, so every request to node 0's gateway crosses nodes.
    func remoteID(_ cluster: TestCluster, prefix: String) -> String {
        key(ofType: "plex.workflow", ownedBy: cluster.node(1).nodeID, on: cluster.node(0), prefix: prefix)
    }

    @Test("start (idempotent), status, result with a wait, history and list, from a node that does not own it")
    func lifecycle() async throws {
        try await withGateway { cluster, client in
            let id = remoteID(cluster, prefix: "o")
            let input = #"{"order":"\#(id)","amount":50}"#
            let started = try await client.send(.post, "/v1/workflows/order/\(id)", body: input)
            #expect(started.status == .ok, "\(started.text)")
            #expect(try started.object["id"] as? String == id)
            #expect(try started.object["type"] as? String == "order")
            let again = try await client.send(.post, "/v1/workflows/order/\(id)", body: input)
            #expect(again.status == .ok)
            #expect(try again.object["startedAt"] as? Int == started.object["startedAt"] as? Int, "one instance")

            let result = try await client.send(.get, "/v1/workflows/\(id)/result?wait_ms=20000")
            #expect(result.status == .ok, "\(result.text)")
            #expect(try result.object["status"] as? String == "completed")
            #expect(try (result.object["result"] as? String)?.hasPrefix("shipped \(id)") == true)

            let status = try await client.send(.get, "/v1/workflows/\(id)")
            #expect(try status.object["status"] as? String == "completed")
            let history = try await client.send(.get, "/v1/workflows/\(id)/history")
            let steps = try #require(try history.object["history"] as? [[String: any Sendable]])
            #expect(steps.compactMap { $0["name"] as? String } == ["validate", "charge", "shipping"])

            // The index is written after the instance closes (a one-way message): it catches up.
            try await eventually("the list shows it completed, not running") {
                let completed = try await client.send(.get, "/v1/workflows?status=completed&type=order")
                let running = try await client.send(.get, "/v1/workflows?status=running")
                return try completed.array.contains { $0["id"] as? String == id }
                    && !running.array.contains { $0["id"] as? String == id }
            }
            let badStatus = try await client.send(.get, "/v1/workflows?status=sleepy")
            #expect(badStatus.status == .badRequest)

            let purged = try await client.send(.delete, "/v1/workflows/\(id)")
            #expect(purged.status == .ok, "\(purged.text)")
            #expect(try await client.send(.get, "/v1/workflows/\(id)").status == .notFound)
            // A cancel or terminate of an id never started is a 404, as a read of it is.
            let cancelled = try await client.send(.post, "/v1/workflows/\(id)/cancel")
            #expect(cancelled.status == .notFound, "\(cancelled.text)")
            #expect(cancelled.errorCode == "notFound")
            #expect(try await client.send(.post, "/v1/workflows/\(id)/terminate").status == .notFound)
        }
    }

    @Test("an instance waiting for approval answers 202 to a result request, runs on after the event over HTTP")
    func approvalEvent() async throws {
        try await withGateway { cluster, client in
            let id = remoteID(cluster, prefix: "big")
            let started = try await client.send(
                .post, "/v1/workflows/order/\(id)", body: #"{"order":"\#(id)","amount":5000}"#)
            #expect(started.status == .ok, "\(started.text)")
            try await eventually("it waits for approval") {
                let progress = try await client.send(.get, "/v1/workflows/\(id)/queries/progress")
                return progress.text == #""waiting for approval""#
            }
            let pending = try await client.send(.get, "/v1/workflows/\(id)/result")
            #expect(pending.status == .accepted)
            #expect(try pending.object["status"] as? String == "running")
            let waited = try await client.send(.get, "/v1/workflows/\(id)/result?wait_ms=200")
            #expect(waited.status == .accepted, "a wait that ends first answers 202")

            let event = try await client.send(.post, "/v1/workflows/\(id)/events/approval", body: "true")
            #expect(event.status == .ok, "\(event.text)")
            let result = try await client.send(.get, "/v1/workflows/\(id)/result?wait_ms=20000")
            #expect(try result.object["status"] as? String == "completed", "\(result.text)")
        }
    }

    @Test("cancel and terminate over HTTP close an instance; unknown instances and types answer 404")
    func cancelTerminateAndErrors() async throws {
        try await withGateway { cluster, client in
            let first = remoteID(cluster, prefix: "c")
            let second = remoteID(cluster, prefix: "t")
            for id in [first, second] {
                let started = try await client.send(
                    .post, "/v1/workflows/order/\(id)", body: #"{"order":"\#(id)","amount":5000}"#)
                #expect(started.status == .ok)
            }
            let cancelled = try await client.send(.post, "/v1/workflows/\(first)/cancel")
            #expect(cancelled.status == .ok, "\(cancelled.text)")
            let cancelledResult = try await client.send(.get, "/v1/workflows/\(first)/result?wait_ms=20000")
            #expect(try cancelledResult.object["status"] as? String == "cancelled", "\(cancelledResult.text)")

            let terminated = try await client.send(.post, "/v1/workflows/\(second)/terminate?reason=operator")
            #expect(terminated.status == .ok, "\(terminated.text)")
            #expect(try terminated.object["status"] as? String == "terminated")

            #expect(try await client.send(.get, "/v1/workflows/never-started").status == .notFound)
            #expect(try await client.send(.post, "/v1/workflows/never-started/cancel").status == .notFound)
            #expect(try await client.send(.post, "/v1/workflows/never-started/terminate").status == .notFound)
            #expect(try await client.send(.get, "/v1/workflows/never-started/history").status == .notFound)
            let unknownType = try await client.send(.post, "/v1/workflows/nope/x1", body: "{}")
            #expect(unknownType.status == .notFound)
            #expect(unknownType.errorCode == "unknownWorkflowType", "\(unknownType.text)")
            let badInput = try await client.send(.post, "/v1/workflows/order/x2", body: #"{"order":1}"#)
            #expect(badInput.status == .badRequest, "\(badInput.text)")
            // `cancel` and `terminate` as instance ids are the cancel and terminate routes, never a start: this
            // asks to cancel instance "order" (README, the gateway section).
            let reserved = try await client.send(.post, "/v1/workflows/order/cancel", body: #"{"order":"o"}"#)
            #expect(reserved.status == .notFound && reserved.text.contains("order"), "\(reserved.text)")
        }
    }
}
