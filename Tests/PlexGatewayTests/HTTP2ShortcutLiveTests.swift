import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP2
import PlexExamples
import PlexGateway
import PlexSpaces
import PlexTestKit
import ServiceLifecycle
import Testing

/// The frame-level shortcut of the h2c listener against a real HTTP/2 client writing frames the HTTP/1 codec
/// would never make.
@Suite("HTTP gateway: the h2c shortcut on frames", .serialized, .timeLimit(.minutes(2)))
struct HTTP2ShortcutLiveTests {
    static func configuration() -> GatewayConfiguration {
        var configuration = GatewayConfiguration()
        configuration.plaintextHTTP2 = GatewayListener(port: 0)
        return configuration
    }

    static func count(_ body: String) -> Int? { field("count", of: body) }

    /// The integer `name` of a JSON object.
    static func field(_ name: String, of body: String) -> Int? {
        let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        return object?[name] as? Int
    }

    @Test("a body in many DATA frames, beyond a stream's 64 KiB window, is collected and answered")
    func largeBody() async throws {
        try await withLiveGateway(configuration: Self.configuration()) { cluster, ports in
            let key = key(ofType: Counter.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0), prefix: "b")
            // Valid JSON of 200 000 bytes: the request and then white space.
            let body = #"{"increment":{}}"# + String(repeating: " ", count: 200_000 - 16)
            let bytes = Array(body.utf8)
            let chunks = stride(from: 0, to: bytes.count, by: 10_000).map { start in
                String(decoding: bytes[start..<min(start + 10_000, bytes.count)], as: UTF8.self)
            }
            try await H2CConnection.with(port: try #require(ports.http2)) { connection in
                var frames = [H2CConnection.post("/v1/actors/counter/\(key)", length: body.utf8.count)]
                for (index, chunk) in chunks.enumerated() {
                    frames.append(H2CConnection.data(chunk, endStream: index == chunks.count - 1))
                }
                let answer = try await connection.exchange(frames)
                #expect(answer.status == 200, "\(answer)")
                #expect(Self.count(answer.body) == 1, "\(answer.body)")
                // And again on the same connection: the connection's window came back too.
                let again = try await connection.exchange(frames)
                #expect(Self.count(again.body) == 2, "\(again)")
            }
        }
    }

    @Test("a stream the client resets before its body ends runs nothing; the connection goes on")
    func resetBeforeTheEnd() async throws {
        try await withLiveGateway(configuration: Self.configuration()) { cluster, ports in
            let key = key(ofType: Counter.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0), prefix: "r")
            let path = "/v1/actors/counter/\(key)"
            try await H2CConnection.with(port: try #require(ports.http2)) { connection in
                let reset = try await connection.exchange([
                    H2CConnection.post(path, length: 16), H2CConnection.data(#"{"incre"#), .rstStream(.cancel),
                ])
                #expect(reset.status == nil, "no answer to a reset stream: \(reset)")
                let increment = try await connection.send(.POST, path, body: #"{"increment":{}}"#)
                #expect(increment.status == 200)
                #expect(Self.count(increment.body) == 1, "the reset increment never ran: \(increment.body)")
            }
        }
    }

    @Test("a body longer or shorter than its content-length resets the stream, and nothing runs")
    func lyingContentLength() async throws {
        try await withLiveGateway(configuration: Self.configuration()) { cluster, ports in
            let key = key(ofType: Counter.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0), prefix: "l")
            let path = "/v1/actors/counter/\(key)"
            try await H2CConnection.with(port: try #require(ports.http2)) { connection in
                let long = try await connection.exchange([
                    H2CConnection.post(path, length: 5), H2CConnection.data(#"{"increment":{}}"#, endStream: true),
                ])
                #expect(long.status == nil && long.reset != nil, "\(long)")
                let short = try await connection.exchange([
                    H2CConnection.post(path, length: 40), H2CConnection.data(#"{"increment":{}}"#, endStream: true),
                ])
                #expect(short.status == nil && short.reset != nil, "\(short)")
                let get = try await connection.send(.POST, path, body: #"{"get":{}}"#)
                #expect(get.status == 200)
                #expect(Self.count(get.body) == 0, "neither ran: \(get.body)")
            }
        }
    }

    @Test("an Idempotency-Key on a stream the shortcut takes answers a retry from the first reply")
    func idempotencyKey() async throws {
        try await withLiveGateway(configuration: Self.configuration()) { cluster, ports in
            let key = key(
                ofType: DurableCounter.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0), prefix: "i")
            let body = #"{"increment":{"by":1}}"#
            try await H2CConnection.with(port: try #require(ports.http2)) { connection in
                func increment(_ idempotencyKey: String) async throws -> H2CConnection.Exchange {
                    try await connection.exchange([
                        H2CConnection.post(
                            "/v1/actors/durable-counter/\(key)", length: body.utf8.count,
                            fields: [("idempotency-key", idempotencyKey)]),
                        H2CConnection.data(body, endStream: true),
                    ])
                }
                let first = try await increment("once")
                let retry = try await increment("once")
                let other = try await increment("twice")
                #expect(first.status == 200 && retry.status == 200 && other.status == 200)
                #expect(Self.field("value", of: first.body) == 1, "\(first.body)")
                #expect(retry.body == first.body, "the retry is answered from the first reply")
                #expect(Self.field("value", of: other.body) == 2, "\(other.body)")
            }
        }
    }

    @Test("calls on many streams of one connection run side by side, each answered on its own stream")
    func sideBySide() async throws {
        try await withLiveGateway(configuration: Self.configuration()) { _, ports in
            let keys = (0..<8).map { "side-\($0)" }
            try await H2CConnection.with(port: try #require(ports.http2)) { connection in
                let answers = try await withThrowingTaskGroup(of: (String, Int?).self) { group in
                    for key in keys {
                        for _ in 0..<5 {
                            group.addTask {
                                let body = #"{"increment":{}}"#
                                let answer = try await connection.exchange([
                                    H2CConnection.post("/v1/actors/counter/\(key)", length: body.utf8.count),
                                    H2CConnection.data(body, endStream: true),
                                ])
                                return (key, Self.count(answer.body))
                            }
                        }
                    }
                    return try await group.reduce(into: [String: [Int]]()) { $0[$1.0, default: []].append($1.1 ?? -1) }
                }
                for key in keys { #expect(answers[key]?.sorted() == [1, 2, 3, 4, 5], "\(key): \(answers[key] ?? [])") }
            }
        }
    }

    @Test("a call answered while a slower one of its connection runs is sent at once, not when the slow one ends")
    func answerBesideASlowCall() async throws {
        try await withStoppableGateway(configuration: Self.configuration(), http2: true) { node, port, group in
            try await H2CConnection.with(port: port) { connection in
                let before = node.activationCount
                let slowEnded = Flag()
                async let slow = {
                    let answer = try await connection.send(
                        .POST, "/v1/actors/sleeper/slow", body: #"{"milliseconds":3000}"#)
                    await slowEnded.set()
                    return answer
                }()
                try await eventually("the slow call is in hand") { node.activationCount >= before + 1 }
                // Answers of a connection with calls still running are flushed on the event loop's next turn:
                // this one must not wait for the slow call to end.
                let fast = try await connection.send(.POST, "/v1/actors/counter/beside", body: #"{"increment":{}}"#)
                #expect(fast.status == 200 && Self.count(fast.body) == 1, "\(fast)")
                #expect(await !slowEnded.isSet, "the fast answer waited for the slow one")
                let answer = try await slow
                #expect(answer.status == 200 && answer.body == "3000", "\(answer)")
            }
            await group.triggerGracefulShutdown()
        }
    }

    @Test("a graceful stop answers the calls in hand on every stream, then closes the connection")
    func gracefulStop() async throws {
        try await withStoppableGateway(configuration: Self.configuration(), http2: true) { node, port, group in
            try await H2CConnection.with(port: port) { connection in
                let before = node.activationCount
                // Two calls of 600 ms on two streams: one the shortcut takes, one through the router.
                async let shortcut = connection.send(.POST, "/v1/actors/sleeper/a", body: #"{"milliseconds":600}"#)
                async let router = connection.send(
                    .POST, ShortcutLiveTests.viaRouter("/v1/actors/sleeper/b"), body: #"{"milliseconds":600}"#)
                try await eventually("both calls are in hand") { node.activationCount >= before + 2 }
                await group.triggerGracefulShutdown()
                let answers = try await [shortcut, router]
                #expect(answers.map(\.status) == [200, 200], "\(answers)")
                #expect(answers.map(\.body) == ["600", "600"], "\(answers)")
                try await eventually("the server closes the connection") {
                    !connection.channel.isActive
                }
            }
        }
    }

    @Test(
        "a graceful stop of a busy connection answers what it took, refuses the rest, and every answer is all that ran")
    func stopWhileBusy() async throws {
        let key = "busy"
        try await withStoppableGateway(configuration: Self.configuration(), http2: true) { node, port, group in
            let answered = try await H2CConnection.with(port: port) { connection in
                try await withThrowingTaskGroup(of: Int.self) { loops in
                    // Eight clients on the one connection, each sending the next increment once the last is
                    // answered (half through the shortcut, half through the router), until one is not.
                    for loop in 0..<8 {
                        loops.addTask {
                            let path = "/v1/actors/counter/\(key)"
                            var answered = 0
                            while true {
                                let reply = try? await connection.send(
                                    .POST, loop.isMultiple(of: 2) ? path : ShortcutLiveTests.viaRouter(path),
                                    body: #"{"increment":{}}"#)
                                guard reply?.status == 200 else { return answered }
                                answered += 1
                            }
                        }
                    }
                    try await eventually("the load runs") {
                        try await node.actor(Counter.self, key: key).ask(.get).count >= 40
                    }
                    await group.triggerGracefulShutdown()
                    return try await loops.reduce(0, +)
                }
            }
            let ran = try await node.actor(Counter.self, key: key).ask(.get).count
            #expect(ran == answered, "\(ran) increments ran, \(answered) were answered")
        }
    }

    @Test("streams a client sends after a graceful stop began are refused one by one; those before it are answered")
    func stopWhileStreamsArrive() async throws {
        try await withStoppableGateway(configuration: Self.configuration(), http2: true) { node, port, group in
            try await Self.crossTheStop(node: node, port: port, group: group)
        }
    }

    /// Sends a burst on a raw connection, stops the gateway while it is answered, sends another, and checks
    /// what came back against what ran.
    static func crossTheStop(node: PlexNode, port: Int, group: ServiceGroup) async throws {
        let connection = try RawH2Connection(port: port)
        let path = "/v1/actors/counter/crossing"
        // Half through the shortcut, half through the router.
        let (body, router) = (#"{"increment":{}}"#, ShortcutLiveTests.viaRouter(path))
        connection.read(timeout: .seconds(10)) { $0.settled }
        try #require(connection.settled, "the server's SETTINGS")
        try connection.burst(20, path: path, alternate: router, body: body)
        // The server works on the first burst: then the stop.
        connection.read(timeout: .seconds(10)) { $0.hasAnswer }
        await group.triggerGracefulShutdown()
        // The listener closes as the stop begins; then a second burst, which crosses the stop on the wire.
        try await eventually("the listener is closed") { Self.refusesConnections(port) }
        try connection.burst(20, path: path, alternate: router, body: body)
        connection.read(timeout: .seconds(20))
        let (closed, errors, unexplained, answered) = connection.summary()
        #expect(closed, "the server ends the connection")
        #expect(errors == 0, "no GOAWAY with an error code")
        #expect(unexplained.isEmpty, "streams neither answered, refused, nor beyond the GOAWAY: \(unexplained)")
        let ran = try await node.actor(Counter.self, key: "crossing").ask(.get).count
        #expect(ran == answered, "\(ran) increments ran, \(answered) were answered")
        #expect(answered >= 1)
        connection.socket.close()
    }

    /// Whether nothing listens on `port` any more.
    static func refusesConnections(_ port: Int) -> Bool {
        guard let connection = try? RawConnection(port: port) else { return true }
        connection.close()
        return false
    }
}

/// Set once something happened: the order of two events, without timing them.
actor Flag {
    private(set) var isSet = false
    func set() { isSet = true }
}
