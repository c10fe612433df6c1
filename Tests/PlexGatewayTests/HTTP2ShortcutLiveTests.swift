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

    static func count(_ body: String) -> Int? {
        let object = try? JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        return object?["count"] as? Int
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
}
