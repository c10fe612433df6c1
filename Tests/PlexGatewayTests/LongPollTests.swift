import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP2
import PlexExamples
import PlexSpaces
import PlexTestKit
import Testing

@testable import PlexGateway

/// `GET /v1/workflows/{id}/result?wait_ms=` against a live listener: a long poll ends with its client, not only
/// when the instance finishes or the wait runs out.
@Suite("HTTP gateway: workflow result long polls", .serialized, .timeLimit(.minutes(2)))
struct LongPollTests {
    /// The result path of instance `id`, waiting a minute: far longer than any deadline below.
    static func longPoll(_ id: String) -> String { "/v1/workflows/\(id)/result?wait_ms=60000" }

    static var http2Configuration: GatewayConfiguration {
        var configuration = GatewayConfiguration()
        configuration.plaintextHTTP2 = GatewayListener(port: 0)
        return configuration
    }

    /// Runs `body` with the port of a gateway's h2c listener (a one-node cluster), then stops the gateway.
    static func onHTTP2(
        _ configuration: GatewayConfiguration = http2Configuration,
        _ body: @Sendable @escaping (Int) async throws -> Void
    ) async throws {
        try await withRunningGateway(configuration: configuration, http2: true) { _, _, port, group in
            try await body(port)
            await group.triggerGracefulShutdown()
        }
    }

    /// The header block of a long poll of instance `id`.
    static func pollHeaders(_ id: String) -> HPACKHeaders {
        [":method": "GET", ":scheme": "http", ":authority": "127.0.0.1", ":path": longPoll(id)]
    }

    /// Opens a stream on `connection` and hands `body` its outbound side, to write a poll's frames as they are.
    static func poll(
        on connection: H2CConnection,
        _ body: (NIOAsyncChannelOutboundWriter<HTTP2Frame.FramePayload>) async throws -> Void
    ) async throws {
        let stream = try await connection.multiplexer.openStream { stream in
            stream.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<HTTP2Frame.FramePayload, HTTP2Frame.FramePayload>(
                    wrappingChannelSynchronously: stream)
            }
        }
        try await stream.executeThenClose { _, outbound in try await body(outbound) }
    }

    /// An order of 5000 waits for approval, so its instance runs until the test ends.
    static let order = #"{"order":"poll","amount":5000}"#

    @Test("an HTTP/1.1 long poll ends when its client closes; a client that only half-closes gets the status")
    func http1() async throws {
        try await withRunningGateway(configuration: GatewayConfiguration()) { gateway, _, port, group in
            let start = try RawConnection(port: port)
            let started = try await start.exchange(
                ShortcutLiveTests.post("/v1/workflows/order/poll-1", Self.order), count: 1)
            start.close()
            #expect(started.first?.status == 200, "\(started)")

            // A client that goes away while it waits.
            let gone = try RawConnection(port: port)
            let request = Array("GET \(Self.longPoll("poll-1")) HTTP/1.1\r\nHost: test\r\n\r\n".utf8)
            _ = request.withUnsafeBytes { send(gone.descriptor, $0.baseAddress, $0.count, 0) }
            try await eventually("the poll waits") { gateway.resultWaits.current == 1 }
            gone.close()
            try await eventually("the poll ends with its client") { gateway.resultWaits.current == 0 }

            // A client that says it sends no more (half-close) is still answered at once: the status as it is;
            // then the connection closes.
            let halfClosed = try RawConnection(port: port)
            defer { halfClosed.close() }
            let answers = try await halfClosed.exchange(
                "GET \(Self.longPoll("poll-1")) HTTP/1.1\r\nHost: test\r\n\r\n", count: 1, halfClose: true)
            #expect(answers.first?.status == 202, "\(answers)")
            #expect(answers.first?.body.contains(#""status":"running""#) == true, "\(answers)")
            #expect(halfClosed.closedByServer(within: .seconds(10)))
            #expect(gateway.resultWaits.current == 0)
            await group.triggerGracefulShutdown()
        }
    }

    @Test("a poll keeps its HTTP/1.1 connection: a body sent with it and the requests pipelined behind it are taken")
    func http1KeepsTheConnection() async throws {
        try await withRunningGateway(configuration: GatewayConfiguration()) { gateway, _, port, group in
            let connection = try RawConnection(port: port)
            defer { connection.close() }
            // A GET with a chunked body of six chunks (the poll reads none of it), then a call and a health check.
            let chunked =
                "GET /v1/workflows/poll-2/result?wait_ms=100 HTTP/1.1\r\nHost: test\r\n"
                + "Transfer-Encoding: chunked\r\n\r\n" + String(repeating: "1\r\na\r\n", count: 6) + "0\r\n\r\n"
            let answers = try await connection.exchange(
                ShortcutLiveTests.post("/v1/workflows/order/poll-2", Self.order) + chunked
                    + ShortcutLiveTests.post("/v1/actors/durable-counter/poll-2", #"{"increment":{"by":1}}"#)
                    + "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n",
                count: 4)
            #expect(answers.map(\.status) == [200, 202, 200, 200], "\(answers.map(\.body))")
            #expect(answers[2].body.contains(#""value":1"#), "the call behind the poll ran once: \(answers[2].body)")
            #expect(answers[1].headers["connection"] == nil, "\(answers[1].headers)")
            #expect(gateway.resultWaits.current == 0)
            await group.triggerGracefulShutdown()
        }
    }

    @Test("an HTTP/2 long poll ends when its stream is reset, and when its connection closes")
    func http2() async throws {
        try await withRunningGateway(configuration: Self.http2Configuration, http2: true) { gateway, _, port, group in
            try await H2CConnection.with(port: port) { connection in
                let started = try await connection.send(.POST, "/v1/workflows/order/poll-3", body: Self.order)
                #expect(started.status == 200, "\(started)")
                let answered = try await connection.send(.GET, "/v1/workflows/poll-3/result?wait_ms=100")
                #expect(answered.status == 202, "a stream's answer carries no Connection field: \(answered)")

                // A stream reset while it waits; the connection goes on.
                try await Self.poll(on: connection) { outbound in
                    try await outbound.write(.headers(.init(headers: Self.pollHeaders("poll-3"), endStream: true)))
                    try await eventually("the poll waits") { gateway.resultWaits.current == 1 }
                    try await outbound.write(.rstStream(.cancel))
                }
                try await eventually("the poll ends with its stream") { gateway.resultWaits.current == 0 }
                let status = try await connection.send(.GET, "/v1/workflows/poll-3")
                #expect(status.status == 200, "the connection goes on: \(status)")
            }

            // A connection closed while a stream of it waits; another whose poll's request body never ends.
            try await H2CConnection.with(port: port) { connection in
                let poll = Task { try await connection.send(.GET, Self.longPoll("poll-3")) }
                try await eventually("the poll waits") { gateway.resultWaits.current == 1 }
                try await connection.channel.close()
                _ = await poll.result
            }
            try await eventually("the poll ends with its connection") { gateway.resultWaits.current == 0 }
            try await H2CConnection.with(port: port) { connection in
                try await Self.poll(on: connection) { outbound in
                    try await outbound.write(.headers(.init(headers: Self.pollHeaders("poll-3"), endStream: false)))
                    try await outbound.write(.data(.init(data: .byteBuffer(ByteBuffer(string: "x")))))
                    try await eventually("the poll waits") { gateway.resultWaits.current == 1 }
                    try await connection.channel.close()
                }
            }
            try await eventually("the poll ends with its connection") { gateway.resultWaits.current == 0 }
            let status = try await H2CConnection.with(port: port) { try await $0.send(.GET, "/v1/workflows/poll-3") }
            #expect(status.status == 200, "the node serves on: \(status)")
            await group.triggerGracefulShutdown()
        }
    }

    @Test("an HTTP/2 client that half-closes after its requests gets every answer, then the connection ends")
    func http2HalfClose() async throws {
        try await Self.onHTTP2 { try await Self.halfCloseAfterABurst(port: $0) }
    }

    static func halfCloseAfterABurst(port: Int) async throws {
        let raw = try RawH2Connection(port: port)
        defer { raw.socket.close() }
        raw.read(timeout: .seconds(10)) { $0.settled }
        let path = "/v1/actors/durable-counter/half-close"
        try raw.burst(10, path: path, alternate: path, body: #"{"increment":{"by":1}}"#)
        shutdown(raw.socket.descriptor, Int32(SHUT_WR))
        raw.read(timeout: .seconds(20))
        let summary = raw.summary()
        #expect(summary.closed, "the connection ends after the answers")
        #expect(summary.answered == 10 && summary.unexplained.isEmpty && summary.errors == 0, "\(summary)")
    }

    @Test("an HTTP/2 client that half-closes with a request it never ended: that stream is reset, the rest answered")
    func http2HalfCloseIncomplete() async throws {
        try await Self.onHTTP2 { try await Self.halfCloseWithAnOpenRequest(port: $0) }
    }

    static func halfCloseWithAnOpenRequest(port: Int) async throws {
        let raw = try RawH2Connection(port: port)
        defer { raw.socket.close() }
        raw.read(timeout: .seconds(10)) { $0.settled }
        try raw.burst(1, path: "/v1/workflows/order/half-open", alternate: "", body: order)
        raw.read(timeout: .seconds(10)) { $0.outcomes[1]?.answered == true }
        try raw.openGet(path: longPoll("half-open"))  // a poll of a running instance whose request never ends
        try raw.burst(
            2, path: "/v1/actors/counter/open", alternate: "/v1/actors/counter/open", body: #"{"increment":{}}"#)
        shutdown(raw.socket.descriptor, Int32(SHUT_WR))
        // Well within the idle timeout (60 s), which would end it otherwise.
        raw.read(timeout: .seconds(20))
        #expect(raw.closed, "the connection ends")
        #expect(
            raw.outcomes[3]?.resetCode == 8 && raw.outcomes[3]?.answered == false, "reset (CANCEL): \(raw.outcomes)")
        #expect(raw.outcomes[5]?.answered == true && raw.outcomes[7]?.answered == true, "\(raw.outcomes)")
    }

    @Test(
        "an HTTP/2 client that half-closes while an answer waits for a window update is let go after the idle timeout")
    func http2HalfCloseStalled() async throws {
        var configuration = Self.http2Configuration
        configuration.idleTimeout = .milliseconds(500)
        try await Self.onHTTP2(configuration) { try await Self.halfCloseStalled(port: $0) }
    }

    static func halfCloseStalled(port: Int) async throws {
        // SETTINGS_INITIAL_WINDOW_SIZE 1: a stream's answer stops after one byte until a window update.
        let raw = try RawH2Connection(port: port, settings: [(0x4, 1)])
        defer { raw.socket.close() }
        raw.read(timeout: .seconds(10)) { $0.settled }
        try raw.burst(1, path: "/v1/actors/counter/stalled", alternate: "", body: #"{"increment":{}}"#)
        shutdown(raw.socket.descriptor, Int32(SHUT_WR))
        raw.read(timeout: .seconds(20))
        #expect(raw.closed, "the connection ends although the answer cannot be sent whole")
    }

    @Test("a graceful stop answers the polls in hand with the status as it is, over HTTP/1.1 and HTTP/2")
    func gracefulStop() async throws {
        try await withRunningGateway(configuration: GatewayConfiguration()) { gateway, _, port, group in
            let connection = try RawConnection(port: port)
            defer { connection.close() }
            let started = try await connection.exchange(
                ShortcutLiveTests.post("/v1/workflows/order/poll-5", Self.order), count: 1)
            #expect(started.first?.status == 200, "\(started)")
            // Answered well before its minute: the answer's own deadline is 20 s.
            async let answers = connection.exchange(
                "GET \(Self.longPoll("poll-5")) HTTP/1.1\r\nHost: test\r\n\r\n", count: 1, timeout: .seconds(20))
            try await eventually("the poll waits") { gateway.resultWaits.current == 1 }
            await group.triggerGracefulShutdown()
            let answer = try await answers
            #expect(answer.first?.status == 202 && answer.first?.body.contains(#""status":"running""#) == true)
            #expect(answer.first?.headers["connection"] == "close", "the client is told to poll elsewhere")
        }
        try await withRunningGateway(configuration: Self.http2Configuration, http2: true) { gateway, _, port, group in
            try await H2CConnection.with(port: port) { connection in
                let started = try await connection.send(.POST, "/v1/workflows/order/poll-6", body: Self.order)
                #expect(started.status == 200, "\(started)")
                let poll = Task { try await connection.send(.GET, Self.longPoll("poll-6")) }
                try await eventually("the poll waits") { gateway.resultWaits.current == 1 }
                await group.triggerGracefulShutdown()
                let answer = try await poll.value
                #expect(answer.status == 202 && answer.body.contains(#""status":"running""#), "\(answer)")
            }
        }
    }
}
