import Foundation
import HTTPTypes
import PlexExamples
import PlexGateway
import PlexSpaces
import PlexTestKit
import Testing

@Suite("HTTP gateway: actors and the cluster", .timeLimit(.minutes(2)))
struct GatewayActorTests {
    @Test("a call sent to a node that does not own the actor runs on the owner and answers its JSON reply")
    func callRoutesToOwner() async throws {
        try await withGateway { cluster, client in
            let owner = cluster.node(1).nodeID
            let key = key(ofType: Counter.typeName, ownedBy: owner, on: cluster.node(0), prefix: "c")
            let first = try await client.send(.post, "/v1/actors/counter/\(key)", body: #"{"increment":{}}"#)
            #expect(first.status == .ok, "\(first.text)")
            #expect(first.headers[.contentType] == "application/json")
            #expect(try first.object["count"] as? Int == 1)
            #expect(try first.object["node"] as? String == owner.rawValue, "the owner ran it")
            let added = try await client.send(.post, "/v1/actors/counter/\(key)", body: #"{"add":{"amount":41}}"#)
            #expect(try added.object["count"] as? Int == 42)
            // The state is the actor's, not the gateway's: reading it through the library agrees.
            let reply = try await cluster.node(1).actor(Counter.self, key: key).ask(.get)
            #expect(reply.count == 42)
        }
    }

    @Test("an Idempotency-Key header makes a retried durable call take effect once")
    func idempotencyKey() async throws {
        try await withGateway { cluster, client in
            let key = key(ofType: DurableCounter.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0))
            let uri = "/v1/actors/durable-counter/\(key)"
            let body = #"{"increment":{"by":5}}"#
            let first = try await client.send(.post, uri, body: body, headers: [.idempotencyKey: "order-7"])
            let retried = try await client.send(.post, uri, body: body, headers: [.idempotencyKey: "order-7"])
            #expect(first.status == .ok, "\(first.text)")
            #expect(first.text == retried.text, "the retry answers the first reply")
            let other = try await client.send(.post, uri, body: body, headers: [.idempotencyKey: "order-8"])
            #expect(try other.object["value"] as? Int == 10, "\(other.text)")
        }
    }

    @Test("errors answer with the status users expect and a typed JSON body")
    func errorMapping() async throws {
        try await withGateway { cluster, client in
            let unknown = try await client.send(.post, "/v1/actors/nope/k", body: "{}")
            #expect(unknown.status == .notFound)
            #expect(unknown.errorCode == "unknownActorType")
            // The runtime's own types are reached through their routes only.
            let internalType = try await client.send(
                .post, "/v1/actors/plex.workflow/w1", body: #"{"cancel":{}}"#)
            #expect(internalType.status == .notFound)
            #expect(internalType.errorCode == "unknownActorType")
            // The runtime's idempotency keys (a reminder's delivery) cannot be forged over HTTP.
            let forged = try await client.send(
                .post, "/v1/actors/durable-counter/k", body: #"{"reset":{}}"#,
                headers: [.idempotencyKey: "plex.reminder/reset/1"])
            #expect(forged.status == .badRequest, "\(forged.text)")
            // A key the wire cannot carry whole is refused, not cut short into another actor's key.
            let longKey = String(repeating: "a", count: 70_000)
            let tooLong = try await client.send(.post, "/v1/actors/counter/\(longKey)", body: #"{"increment":{}}"#)
            #expect(tooLong.status == .badRequest, "\(tooLong.text.prefix(200))")

            let malformed = try await client.send(.post, "/v1/actors/counter/k", body: #"{"increment": }"#)
            #expect(malformed.status == .badRequest)
            #expect(malformed.errorCode == "invalidRequest")
            #expect(malformed.errorMessage.contains("character 14"), "names the position: \(malformed.errorMessage)")

            let truncated = try await client.send(.post, "/v1/actors/counter/k", body: #"{"increment":"#)
            #expect(truncated.status == .badRequest)
            #expect(truncated.errorMessage.contains("byte 13"), "names the position: \(truncated.errorMessage)")

            let wrongShape = try await client.send(.post, "/v1/actors/counter/k", body: #"{"bogus":{}}"#)
            #expect(wrongShape.status == .badRequest)
            #expect(wrongShape.errorMessage.contains("counter"))

            let failed = try await client.send(.post, "/v1/actors/ledger/a1", body: #"{"withdraw":{"amount":5}}"#)
            #expect(failed.status == .internalServerError)
            #expect(failed.errorCode == "remoteFailure", "\(failed.text)")
            #expect(
                try (failed.object["error"] as? [String: any Sendable])?["actorCode"] as? String == "insufficient-funds"
            )

            let key = key(ofType: Sleeper.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0))
            let slow = try await client.send(
                .post, "/v1/actors/sleeper/\(key)?timeout_ms=100", body: #"{"milliseconds":3000}"#)
            #expect(slow.status == .gatewayTimeout, "\(slow.text)")
            #expect(slow.errorCode == "timeout")
            let header = try await client.send(
                .post, "/v1/actors/sleeper/\(key)x", body: #"{"milliseconds":3000}"#, headers: [.plexTimeout: "100"])
            #expect(header.status == .gatewayTimeout)
            // On the gateway's own node too: the deadline bounds the wait even while the handler still runs.
            let local = PlexTestKit.key(ofType: Sleeper.typeName, ownedBy: cluster.node(0).nodeID, on: cluster.node(0))
            let clock = ContinuousClock()
            let started = clock.now
            let here = try await client.send(
                .post, "/v1/actors/sleeper/\(local)?timeout_ms=100", body: #"{"milliseconds":3000}"#)
            #expect(here.status == .gatewayTimeout, "\(here.text)")
            #expect(clock.now - started < .seconds(2), "answered at the deadline, not when the handler ended")
            let badTimeout = try await client.send(.post, "/v1/actors/counter/k?timeout_ms=soon", body: "{}")
            #expect(badTimeout.status == .badRequest)
        }
    }

    @Test("a call whose owner is unreachable answers 503 with Retry-After; overloaded maps to 429")
    func unavailable() async throws {
        // A failure detector slower than the test, so the ring still names the crashed node as owner.
        try await withGateway(setup: { $0.membership.unreachableAfter = .seconds(60) }) { cluster, client in
            let key = key(ofType: Counter.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0))
            await cluster.crash(1)
            let answer = try await client.send(.post, "/v1/actors/counter/\(key)", body: #"{"increment":{}}"#)
            #expect(answer.status == .serviceUnavailable, "\(answer.text)")
            #expect(answer.errorCode == "nodeUnavailable")
            #expect(answer.headers[.retryAfter] == "1")
        }
        let overloaded = GatewayError(CallError(.overloaded, "mailbox full"))
        #expect(overloaded.status == .tooManyRequests)
        #expect(overloaded.retryAfter == 1)
    }

    @Test("a body over the limit is refused with 413; one within it is served")
    func oversizedBody() async throws {
        try await withGateway(configuration: GatewayConfiguration(maximumBodySize: 64)) { cluster, client in
            let padding = String(repeating: "x", count: 100)
            let answer = try await client.send(
                .post, "/v1/actors/echo/e1", body: #"{"text":"\#(padding)"}"#)
            #expect(answer.status == .contentTooLarge)
            #expect(answer.errorCode == "payloadTooLarge")
            let small = try await client.send(.post, "/v1/actors/echo/e1", body: #"{"text":"hi"}"#)
            #expect(small.status == .ok)
            #expect(try small.object["text"] as? String == "hi")
        }
    }

    @Test("unknown routes answer 404, a known path with another method 405 with Allow")
    func routing() async throws {
        try await withGateway(nodes: 1) { _, client in
            let missing = try await client.send(.get, "/v2/anything")
            #expect(missing.status == .notFound)
            #expect(missing.errorCode == "notFound")
            let wrongMethod = try await client.send(.get, "/v1/actors/counter/c1")
            #expect(wrongMethod.status == .methodNotAllowed)
            #expect(wrongMethod.headers[.allow] == "POST")
            // A start whose id is one of the workflow routes' own words is refused, not answered 405.
            let reserved = try await client.send(.post, "/v1/workflows/order/result", body: "{}")
            #expect(reserved.status == .badRequest, "\(reserved.text)")
            let workflow = try await client.send(.put, "/v1/workflows/w1")
            #expect(workflow.status == .methodNotAllowed)
            #expect(workflow.headers[.allow] == "GET, DELETE")
        }
    }

    @Test("the cluster, health and readiness routes describe the cluster as it is")
    func clusterAndProbes() async throws {
        try await withGateway(nodes: 3) { cluster, client in
            let status = try await client.send(.get, "/v1/cluster")
            #expect(status.status == .ok)
            let members = try #require(try status.object["members"] as? [[String: any Sendable]])
            #expect(Set(members.compactMap { $0["nodeID"] as? String }) == Set(cluster.nodes.map(\.nodeID.rawValue)))
            #expect(members.allSatisfy { $0["state"] as? String == "up" })
            #expect(try await client.send(.get, "/healthz").status == .ok)
            #expect(try await client.send(.get, "/readyz").status == .ok)
        }
    }

    @Test("the OpenAPI document describes exactly the routes the gateway answers")
    func openAPIInSync() async throws {
        try await withGateway(nodes: 1) { _, client in
            let answer = try await client.send(.get, "/openapi.json")
            #expect(answer.status == .ok)
            let paths = try #require(try answer.object["paths"] as? [String: [String: any Sendable]])
            var documented: Set<String> = []
            for (path, operations) in paths {
                for method in operations.keys where method != "parameters" {
                    documented.insert("\(method.uppercased()) \(path)")
                }
            }
            let routed = Set(GatewayRoute.allCases.map { "\($0.method.rawValue) \($0.path)" })
            #expect(documented == routed)
            #expect(try answer.object["openapi"] as? String == "3.1.0")
        }
    }

    @Test("the gateway serves real HTTP: a live server on loopback answers a call routed to another node")
    func liveServer() async throws {
        try await withGateway(live: true) { cluster, client in
            #expect(client.port != nil)
            let key = key(ofType: Echo.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0))
            let answer = try await client.send(.post, "/v1/actors/echo/\(key)", body: #"{"text":"over http"}"#)
            #expect(answer.status == .ok, "\(answer.text)")
            #expect(try answer.object["node"] as? String == cluster.node(1).nodeID.rawValue)
        }
    }
}

extension HTTPField.Name {
    static let idempotencyKey = HTTPField.Name("Idempotency-Key")!
    static let plexTimeout = HTTPField.Name("Plex-Timeout-Ms")!
}
