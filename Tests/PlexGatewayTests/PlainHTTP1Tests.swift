import Foundation
import Hummingbird
import Logging
import PlexExamples
import PlexSpaces
import PlexTestKit
import ServiceLifecycle
import Testing

@testable import PlexGateway

@Suite("HTTP gateway: the raw HTTP/1.1 reader")
struct RawRequestHeadTests {
    static func scan(_ text: String) -> RawRequestHead.Scan {
        Array(text.utf8).withUnsafeBytes { RawRequestHead.scan($0) }
    }

    static let plain = "POST /v1/actors/counter/c1 HTTP/1.1\r\nHost: x\r\nContent-Length: 16\r\n\r\n"

    @Test("a POST with Content-Length is read: its target, body length, head length and the route's fields")
    func reads() {
        let text =
            "POST /v1/actors/counter/c%201?timeout_ms=5 HTTP/1.1\r\nhost: x\r\nCONTENT-length:  16 \r\n"
            + "Authorization: Bearer t\tk\r\nIdempotency-Key: k1\r\nPlex-Timeout-Ms: 20\r\nConnection: Keep-Alive\r\n\r\n"
            + #"{"increment":{}}"#
        guard case .take(let head) = Self.scan(text) else {
            Issue.record("not taken: \(Self.scan(text))")
            return
        }
        #expect(head.target == "/v1/actors/counter/c%201?timeout_ms=5")
        #expect(head.contentLength == 16)
        #expect(head.length == text.utf8.count - 16)
        #expect(head.authorization == "Bearer t\tk")
        #expect(head.idempotencyKey == "k1")
        #expect(head.timeout == "20")
        // Its body need not have arrived: the head alone is read.
        #expect(Self.scan(Self.plain) != .passOn && Self.scan(Self.plain) != .incomplete)
    }

    @Test("every prefix of a request it reads is incomplete, not passed on")
    func prefixes() {
        let bytes = Array(Self.plain.utf8)
        for end in 0..<(bytes.count - 1) {
            let scan = bytes[..<end].withUnsafeBytes { RawRequestHead.scan($0) }
            #expect(scan == .incomplete, "\(end) bytes")
        }
    }

    @Test(
        "whatever NIOHTTP1 might read otherwise is passed on, never refused",
        arguments: [
            "GET /healthz HTTP/1.1\r\n\r\n",
            "PUT /v1/actors/counter/c1 HTTP/1.1\r\nContent-Length: 2\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.0\r\nContent-Length: 2\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\nContent-Length: 2\r\n\r\n",  // bare LF
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nContent-Length: 2\n\r\n",
            "POST /v1/actors/counter/c1  HTTP/1.1\r\nContent-Length: 2\r\n\r\n",  // two spaces
            "POST /v1/actors/counter/c\u{1}1 HTTP/1.1\r\nContent-Length: 2\r\n\r\n",
            "POST /v1/actors/counter/cé HTTP/1.1\r\nContent-Length: 2\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nX-A: b\r\n folded\r\nContent-Length: 2\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nContent-Length: +2\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nContent-Length: 2 2\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nContent-Length: 12345678901\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nContent-Length : 2\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nContent-Length: 2\t\r\n\r\n",  // NIOHTTP1 refuses it
            "POST /v1/actors/counter/c1 HTTP/1.1\r\n: 2\r\nContent-Length: 2\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nX-A: a\u{0}b\r\nContent-Length: 2\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nX-A: \u{7F}\r\nContent-Length: 2\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nX-A: é\r\nContent-Length: 2\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\n\r\n",  // no Content-Length
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nContent-Length: 2\r\nUpgrade: h2c\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nContent-Length: 2\r\nConnection: close\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nContent-Length: 2\r\nConnection: keep-alive, upgrade\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nContent-Length: 2\r\nIdempotency-Key: a\r\nidempotency-key: b\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nAuthorization: a\r\nAuthorization: b\r\nContent-Length: 2\r\n\r\n",
            "\r\nPOST /v1/actors/counter/c1 HTTP/1.1\r\nContent-Length: 2\r\n\r\n",  // a leading empty line
            "POST * HTTP/1.1\r\nContent-Length: 2\r\n\r\n",
        ])
    func passesOn(_ text: String) {
        #expect(Self.scan(text) == .passOn)
    }

    @Test("a head longer than the limit is passed on, whole or not")
    func long() {
        let filler = "X-Filler: " + String(repeating: "a", count: RawRequestHead.maximumLength) + "\r\n"
        #expect(Self.scan("POST /v1/actors/counter/c1 HTTP/1.1\r\n" + filler) == .passOn)
        #expect(Self.scan("POST /v1/actors/counter/c1 HTTP/1.1\r\n" + filler + "Content-Length: 2\r\n\r\n") == .passOn)
    }
}

@Suite("HTTP gateway: the raw HTTP/1.1 path, live", .serialized, .timeLimit(.minutes(2)))
struct PlainHTTP1LiveTests {
    @Test("requests sent a few bytes at a time, pipelined behind one another, are answered in order")
    func split() async throws {
        try await withLiveGateway(configuration: GatewayConfiguration()) { _, ports in
            let connection = try RawConnection(port: ports.http)
            defer { connection.close() }
            let path = "/v1/actors/counter/split"
            let requests = (0..<3).map { _ in ShortcutLiveTests.post(path, #"{"increment":{}}"#) }.joined()
            let bytes = Array(requests.utf8)
            // In pieces of 7 bytes with a pause between: heads and bodies cut anywhere, across reads.
            try await Task.detached {
                for start in stride(from: 0, to: bytes.count, by: 7) {
                    let piece = bytes[start..<min(start + 7, bytes.count)]
                    _ = piece.withUnsafeBytes { send(connection.descriptor, $0.baseAddress, $0.count, 0) }
                    try await Task.sleep(for: .milliseconds(2))
                }
            }.value
            let answers = try await connection.exchange("", count: 3)
            #expect(answers.map(\.status) == [200, 200, 200])
            let counts = answers.compactMap {
                (try? JSONSerialization.jsonObject(with: Data($0.body.utf8)) as? [String: Any])?["count"] as? Int
            }
            #expect(counts == [1, 2, 3], "\(answers.map(\.body))")
        }
    }

    @Test("an idle HTTP/1.1 connection closes after the idle timeout, on the raw path and after the hand-over")
    func idle() async throws {
        var configuration = GatewayConfiguration()
        configuration.idleTimeout = .milliseconds(400)
        try await withLiveGateway(configuration: configuration) { _, ports in
            // Calls every 100 ms for well past the timeout: answered every time, so never closed as idle.
            let busy = try RawConnection(port: ports.http)
            defer { busy.close() }
            for _ in 0..<12 {
                let answer = try await busy.exchange(
                    ShortcutLiveTests.post("/v1/actors/counter/idle", #"{"increment":{}}"#), count: 1)
                #expect(answer[0].status == 200)
                try await Task.sleep(for: .milliseconds(100))
            }
            // Then silence: closed.
            #expect(busy.closedByServer(within: .seconds(10)))

            let silent = try RawConnection(port: ports.http)
            defer { silent.close() }
            #expect(silent.closedByServer(within: .seconds(10)))

            // Half a head, then nothing: closed too.
            let partial = try RawConnection(port: ports.http)
            defer { partial.close() }
            let half = Array("POST /v1/actors/counter/idle HTTP/1.1\r\nContent-Le".utf8)
            _ = half.withUnsafeBytes { send(partial.descriptor, $0.baseAddress, $0.count, 0) }
            #expect(partial.closedByServer(within: .seconds(10)))

            // A head trickling in a byte every 100 ms never completes: it is no request, and the connection is
            // closed as idle while the bytes still come (not kept open until the head reaches its limit).
            let trickle = try RawConnection(port: ports.http)
            defer { trickle.close() }
            let head = Array("POST /v1/actors/counter/idle HTTP/1.1\r\nX-Pad: ".utf8)
            _ = head.withUnsafeBytes { send(trickle.descriptor, $0.baseAddress, $0.count, 0) }
            let closedWhileTrickling = try await Task.detached {
                let started = ContinuousClock.now
                while ContinuousClock.now - started < .seconds(10) {
                    var byte = UInt8(ascii: "a")
                    if send(trickle.descriptor, &byte, 1, Int32(MSG_NOSIGNAL)) < 0 { return true }
                    var peek: UInt8 = 0
                    if recv(trickle.descriptor, &peek, 1, Int32(MSG_DONTWAIT)) == 0 { return true }
                    try await Task.sleep(for: .milliseconds(100))
                }
                return false
            }.value
            #expect(closedWhileTrickling, "a partial head trickling in kept the connection open for 10 s")

            // Handed over (a route the raw path does not take), then silence: Hummingbird closes it.
            let handedOver = try RawConnection(port: ports.http)
            defer { handedOver.close() }
            let health = try await handedOver.exchange("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n", count: 1)
            #expect(health[0].status == 200)
            #expect(handedOver.closedByServer(within: .seconds(10)))
        }
    }

    @Test(
        "a graceful stop answers the call in hand on the raw path and the whole request read behind it, then closes")
    func gracefulStop() async throws {
        try await withStoppableGateway(configuration: GatewayConfiguration()) { node, port, group in
            let connection = try RawConnection(port: port)
            defer { connection.close() }
            let before = node.activationCount
            // A call that takes 600 ms, with a second request pipelined behind it (read while it runs).
            let requests =
                ShortcutLiveTests.post("/v1/actors/sleeper/s", #"{"milliseconds":600}"#)
                + ShortcutLiveTests.post("/v1/actors/counter/after", #"{"increment":{}}"#)
            let request = Array(requests.utf8)
            _ = request.withUnsafeBytes { send(connection.descriptor, $0.baseAddress, $0.count, 0) }
            try await eventually("the call is in hand") { node.activationCount > before }
            await group.triggerGracefulShutdown()
            let answer = try await connection.exchange("", count: 2)
            #expect(answer[0].status == 200 && answer[0].body == "600")
            #expect(answer[1].status == 200 && answer[1].body.contains(#""count":1"#), "\(answer[1].body)")
            #expect(connection.closedByServer(within: .seconds(10)))
        }
    }
}
