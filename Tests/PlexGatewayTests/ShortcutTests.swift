import Foundation
import HTTPTypes
import NIOCore
import NIOEmbedded
import NIOHTTPTypes
import PlexExamples
import PlexSpaces
import PlexTestKit
import Testing

@testable import PlexGateway

@Suite("HTTP gateway: the actor-call shortcut of the HTTP/1.1 listener")
struct ShortcutStateTests {
    /// Takes a head whose path starts with `/fast`.
    static func decide(_ head: HTTPRequest) -> String? {
        head.path?.hasPrefix("/fast") == true ? head.path : nil
    }

    static func head(_ path: String) -> HTTPRequestPart {
        .head(HTTPRequest(method: .post, scheme: nil, authority: nil, path: path))
    }

    static func body(_ text: String) -> HTTPRequestPart { .body(ByteBuffer(string: text)) }

    @Test("a request the shortcut takes is collected whole, its body chunks in order, then called")
    func collects() {
        var state = ShortcutState<String, String>()
        guard case .wait = state.read(Self.head("/fast/1"), decide: Self.decide) else { return #expect(Bool(false)) }
        guard case .wait = state.read(Self.body("ab"), decide: Self.decide) else { return #expect(Bool(false)) }
        guard case .wait = state.read(Self.body("cd"), decide: Self.decide) else { return #expect(Bool(false)) }
        guard case .call(let call, let body) = state.read(.end(nil), decide: Self.decide) else {
            return #expect(Bool(false), "the end starts the call")
        }
        #expect(call == "/fast/1")
        #expect(String(buffer: body) == "abcd")
        #expect(state.isCalling)
        state.answered()
        #expect(!state.isCalling)
        #expect(state.next(decide: Self.decide) == nil)
    }

    /// Takes up held arrivals until none is left or a call starts; describes each step.
    static func drain(_ state: inout ShortcutState<String, String>) -> [String] {
        var steps: [String] = []
        while let next = state.next(decide: decide) {
            switch next {
            case .part(.pass(.head(let head))): steps.append("pass \(head.path ?? "")")
            case .part(.pass(.body)): steps.append("pass body")
            case .part(.pass(.end)): steps.append("pass end")
            case .part(.call(let call, _)): steps.append("call \(call)")
            case .part(.wait): steps.append("wait")
            case .other(let event, let before): steps.append("other \(event) after \(before.count)")
            }
        }
        return steps
    }

    @Test("what arrives during a call is held and taken up in order; a held request the shortcut takes holds the rest")
    func holds() {
        var state = ShortcutState<String, String>()
        _ = state.read(Self.head("/fast/1"), decide: Self.decide)
        _ = state.read(.end(nil), decide: Self.decide)
        for part in [Self.head("/fast/2"), .end(nil), Self.head("/fast/3"), .end(nil)] {
            guard case .wait = state.read(part, decide: Self.decide) else { return #expect(Bool(false), "held") }
        }
        #expect(state.other("half-close") == (false, []), "an event behind a call waits too")
        #expect(state.heldCount == 5)
        state.answered()
        #expect(Self.drain(&state) == ["wait", "call /fast/2"], "stops at the next call, the rest stays held")
        #expect(state.heldCount == 3)
        state.answered()
        #expect(Self.drain(&state) == ["wait", "call /fast/3"])
        state.answered()
        #expect(Self.drain(&state) == ["other half-close after 0"], "the event after the answers")
        #expect(state.heldCount == 0)
    }

    @Test("reads go on during a call until something arrives behind it, and again once that is taken up")
    func mayRead() {
        var state = ShortcutState<String, String>()
        #expect(state.mayRead)
        _ = state.read(Self.head("/fast/1"), decide: Self.decide)
        _ = state.read(.end(nil), decide: Self.decide)
        #expect(state.isCalling)
        #expect(state.mayRead, "nothing is held yet")
        _ = state.read(Self.head("/slow"), decide: Self.decide)
        #expect(!state.mayRead, "a client that pipelines waits in its socket")
        state.answered()
        #expect(Self.drain(&state) == ["pass /slow"])
        #expect(state.mayRead)
    }

    @Test("a router request held behind a call passes in order; the shortcut takes the next only once it is answered")
    func holdsRouterRequests() {
        var state = ShortcutState<String, String>()
        _ = state.read(Self.head("/fast/1"), decide: Self.decide)
        _ = state.read(.end(nil), decide: Self.decide)
        for part in [Self.head("/slow"), Self.body("x"), .end(nil), Self.head("/fast/2"), .end(nil)] {
            _ = state.read(part, decide: Self.decide)
        }
        state.answered()
        #expect(Self.drain(&state) == ["pass /slow", "pass body", "pass end", "pass /fast/2", "pass end"])
    }

    @Test("an error or half-close while a request is collected hands what was collected to the router, then it")
    func abandons() {
        var state = ShortcutState<String, String>()
        _ = state.read(Self.head("/fast/1"), decide: Self.decide)
        _ = state.read(Self.body("par"), decide: Self.decide)
        let (now, before) = state.other("half-close")
        #expect(now)
        #expect(before.count == 2)
        guard case .head(let head) = before.first else { return #expect(Bool(false)) }
        #expect(head.path == "/fast/1")
        #expect(state.unanswered == 1, "the router owes its answer now")
    }

    @Test("while a passed request is unanswered, pipelined requests behind it pass too; then the shortcut takes one")
    func keepsOrder() {
        var state = ShortcutState<String, String>()
        guard case .pass = state.read(Self.head("/slow"), decide: Self.decide) else { return #expect(Bool(false)) }
        guard case .pass = state.read(.end(nil), decide: Self.decide) else { return #expect(Bool(false)) }
        guard case .pass = state.read(Self.head("/fast/1"), decide: Self.decide) else {
            return #expect(Bool(false), "behind an unanswered request")
        }
        guard case .pass = state.read(.end(nil), decide: Self.decide) else { return #expect(Bool(false)) }
        #expect(state.unanswered == 2)
        state.responseEnded()
        state.responseEnded()
        guard case .wait = state.read(Self.head("/fast/2"), decide: Self.decide) else {
            return #expect(Bool(false), "all answered: taken")
        }
    }

    @Test("when the router answers before a passed body is read, the rest of that body still passes")
    func earlyAnswer() {
        var state = ShortcutState<String, String>()
        _ = state.read(Self.head("/big"), decide: Self.decide)
        state.responseEnded()  // a 413 before the body was read
        guard case .pass = state.read(Self.body("rest"), decide: Self.decide) else { return #expect(Bool(false)) }
        guard case .pass = state.read(.end(nil), decide: Self.decide) else { return #expect(Bool(false)) }
        guard case .wait = state.read(Self.head("/fast/1"), decide: Self.decide) else { return #expect(Bool(false)) }
    }

    @Test("the Date header is an IMF-fixdate")
    func date() {
        #expect(HTTPDate.format(0) == "Thu, 01 Jan 1970 00:00:00 GMT")
        #expect(HTTPDate.format(951_782_400) == "Tue, 29 Feb 2000 00:00:00 GMT")
        #expect(HTTPDate.format(1_796_294_610) == "Thu, 03 Dec 2026 10:43:30 GMT")
        #expect(HTTPDate.format(-86_400) == "Wed, 31 Dec 1969 00:00:00 GMT")
    }
}

// Serialized: the burst keeps a debug build's event loop busy long enough that the test clusters' 1.5 s failure
// detector would judge the others' nodes dead.
@Suite("HTTP gateway: the shortcut answers as the router does", .serialized, .timeLimit(.minutes(2)))
struct ShortcutLiveTests {
    /// `POST path` with a JSON body, as raw HTTP/1.1.
    static func post(_ path: String, _ body: String, headers: [String: String] = [:]) -> String {
        var text = "POST \(path) HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        for (name, value) in headers { text += "\(name): \(value)\r\n" }
        return text + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"
    }

    /// The same request through the router: a second query parameter makes the shortcut pass it on.
    static func viaRouter(_ path: String) -> String {
        path + (path.contains("?") ? "&via=router" : "?via=router")
    }

    @Test("pipelined requests, some the shortcut takes and some it passes on, are answered in order")
    func pipelined() async throws {
        try await withLiveGateway(configuration: GatewayConfiguration()) { cluster, ports in
            let key = key(ofType: Counter.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0), prefix: "p")
            let path = "/v1/actors/counter/\(key)"
            let connection = try RawConnection(port: ports.http)
            defer { connection.close() }
            let requests = [
                Self.post(path, #"{"increment":{}}"#), "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n",
                Self.post(path, #"{"increment":{}}"#), Self.post(Self.viaRouter(path), #"{"increment":{}}"#),
                Self.post(path, #"{"increment":{}}"#), Self.post(path, #"{"get":{}}"#),
            ]
            let responses = try await connection.exchange(requests.joined(), count: requests.count)
            #expect(responses.map(\.status) == [200, 200, 200, 200, 200, 200])
            let counts = try responses.map {
                try JSONSerialization.jsonObject(with: Data($0.body.utf8)) as? [String: Any]
            }
            .map { $0?["count"] as? Int }
            #expect(counts == [1, nil, 2, 3, 4, 4], "\(responses.map(\.body))")
            #expect(responses[0].body.contains(cluster.node(1).nodeID.rawValue), "the owner ran it")
            #expect(responses[0].headers["date"] != nil)
            #expect(responses[0].headers["content-type"] == "application/json")
        }
    }

    @Test("a parse error or a half-close behind a call waits for its answer; a long burst is answered in order")
    func heldBehindACall() async throws {
        try await withLiveGateway(configuration: GatewayConfiguration()) { cluster, ports in
            let key = key(ofType: DurableCounter.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0))
            let path = "/v1/actors/durable-counter/\(key)"
            let garbage = try RawConnection(port: ports.http)
            defer { garbage.close() }
            let answers = try await garbage.exchange(
                Self.post(path, #"{"increment":{"by":1}}"#) + "GARBAGE\r\n\r\n", count: 2)
            #expect(answers.map(\.status) == [200, 400], "the call's answer, then the parse error's")
            #expect(answers[0].body.contains(#""value":1"#), "\(answers[0].body)")

            let halfClosed = try RawConnection(port: ports.http)
            defer { halfClosed.close() }
            let answer = try await halfClosed.exchange(
                Self.post(path, #"{"increment":{"by":1}}"#), count: 1, halfClose: true)
            #expect(answer[0].status == 200)
            #expect(answer[0].body.contains(#""value":2"#), "\(answer[0].body)")

            // Five hundred calls in one write, all answered, in order (that each held arrival is taken up once,
            // not re-held per call, is ShortcutStateTests.holds).
            let counter = "/v1/actors/counter/burst"
            let burst = try RawConnection(port: ports.http)
            defer { burst.close() }
            let replies = try await burst.exchange(
                String(repeating: Self.post(counter, #"{"increment":{}}"#), count: 500), count: 500,
                timeout: .seconds(60))
            let counts = replies.compactMap { reply in
                (try? JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any])?["count"] as? Int
            }
            #expect(counts == Array(1...500))
        }
    }

    @Test("errors: the shortcut's status, Retry-After and body equal the router's")
    func errorsMatchTheRouter() async throws {
        var configuration = GatewayConfiguration(maximumBodySize: 64)
        configuration.bearerToken = "secret-token"
        try await withLiveGateway(configuration: configuration) { cluster, ports in
            let owned = key(ofType: Counter.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0), prefix: "e")
            let auth = ["Authorization": "Bearer secret-token"]
            let cases: [(path: String, body: String, headers: [String: String], status: Int)] = [
                ("/v1/actors/counter/\(owned)", #"{"increment":"#, auth, 400),  // malformed JSON, named position
                ("/v1/actors/counter/\(owned)", #"{"jump":{}}"#, auth, 400),  // not a request of the type
                ("/v1/actors/nope/k", "{}", auth, 404),  // unknown type
                ("/v1/actors/plex.workflow/k", "{}", auth, 404),  // internal type
                ("/v1/actors/counter/\(owned)", "{}", ["Authorization": "Bearer wrong"], 401),
                ("/v1/actors/counter/\(owned)", "{}", [:], 401),
                ("/v1/actors/counter/\(owned)", String(repeating: " ", count: 100), auth, 413),
                ("/v1/actors/counter/\(owned)?timeout_ms=0", "{}", auth, 400),
                ("/v1/actors/counter/\(owned)", "{}", auth.merging(["Idempotency-Key": "plex.x"]) { $1 }, 400),
            ]
            for item in cases {
                let connection = try RawConnection(port: ports.http)
                defer { connection.close() }
                let both = try await connection.exchange(
                    Self.post(item.path, item.body, headers: item.headers)
                        + Self.post(Self.viaRouter(item.path), item.body, headers: item.headers), count: 2)
                #expect(both[0].status == item.status, "\(item.path) \(item.body): \(both[0].body)")
                #expect(both[0].status == both[1].status, "\(item.path) \(item.body)")
                #expect(both[0].body == both[1].body, "\(item.path) \(item.body)")
                #expect(both[0].headers["content-type"] == both[1].headers["content-type"])
                #expect(both[0].headers["retry-after"] == both[1].headers["retry-after"])
            }
        }
    }

    @Test("reads wait while the socket takes no more writes, and go on once it does")
    func writability() async throws {
        try await withGateway(nodes: 1) { cluster, _ in
            let gateway = try Gateway(node: cluster.node(0), configuration: GatewayConfiguration())
            let reads = ReadCounter()
            let channel = EmbeddedChannel()
            try channel.pipeline.syncOperations.addHandlers([reads, ShortcutHandler(gateway: gateway)])
            channel.read()
            #expect(reads.count == 1, "a writable channel reads")
            channel.isWritable = false
            channel.read()
            #expect(reads.count == 1, "a client that does not take its answers is not read")
            channel.isWritable = true
            channel.pipeline.fireChannelWritabilityChanged()
            #expect(reads.count == 2, "the read held back is made once the socket takes writes again")
            _ = try? channel.finish()
        }
    }

    @Test(
        "an Idempotency-Key through the shortcut answers a retry from the first reply; a call to a stopped owner is 503"
    )
    func idempotencyAndUnavailable() async throws {
        try await withLiveGateway(configuration: GatewayConfiguration()) { cluster, ports in
            let durable = key(ofType: DurableCounter.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0))
            let path = "/v1/actors/durable-counter/\(durable)"
            let connection = try RawConnection(port: ports.http)
            defer { connection.close() }
            let body = #"{"increment":{"by":5}}"#
            let replies = try await connection.exchange(
                Self.post(path, body, headers: ["Idempotency-Key": "k1"])
                    + Self.post(path, body, headers: ["Idempotency-Key": "k1"])
                    + Self.post(path, body, headers: ["Idempotency-Key": "k2"]), count: 3)
            #expect(replies[0].body == replies[1].body, "the retry answers the first reply")
            #expect(replies[2].body.contains(#""value":10"#), "\(replies[2].body)")

            // The owner dies: the call through the shortcut is a 503 with Retry-After, as through the router.
            let owned = key(ofType: Counter.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0), prefix: "u")
            await cluster.crash(1)
            let unavailable = try await connection.exchange(
                Self.post("/v1/actors/counter/\(owned)?timeout_ms=2000", #"{"increment":{}}"#), count: 1)
            #expect(unavailable[0].status == 503, "\(unavailable[0].body)")
            #expect(unavailable[0].headers["retry-after"] == "1")
            #expect(unavailable[0].body.contains("nodeUnavailable"), "\(unavailable[0].body)")
        }
    }
}

/// Fewer responses than expected arrived in time.
struct ExchangeTimedOut: Error {
    var responses: Int
    var pending: String
}

/// One HTTP/1.1 response as read off a raw socket.
struct RawResponse {
    var status: Int
    /// Header names lowercased.
    var headers: [String: String]
    var body: String
}

extension RawConnection {
    /// Sends `requests` (raw HTTP/1.1, possibly several pipelined) and reads `count` responses, each framed by its
    /// `Content-Length`, on a thread of its own: blocking reads on the concurrency pool's few threads would starve
    /// the cluster under test when tests run side by side.
    /// With `halfClose`, the sending side is shut down after the requests (the client says it sends no more).
    func exchange(_ requests: String, count: Int, halfClose: Bool = false, timeout: Duration = .seconds(10))
        async throws -> [RawResponse]
    {
        try await withCheckedThrowingContinuation { continuation in
            DispatchQueue.global().async {
                continuation.resume(
                    with: Result {
                        try self.blockingExchange(requests, count: count, halfClose: halfClose, timeout: timeout)
                    })
            }
        }
    }

    private func blockingExchange(_ requests: String, count: Int, halfClose: Bool, timeout: Duration) throws
        -> [RawResponse]
    {
        let bytes = Array(requests.utf8)
        var sent = 0
        while sent < bytes.count {
            let result = bytes[sent...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
            guard result > 0 else { throw POSIXError(.EPIPE) }
            sent += result
        }
        if halfClose { shutdown(descriptor, Int32(SHUT_WR)) }
        let deadline = ContinuousClock.now + timeout
        var data: [UInt8] = []
        var responses: [RawResponse] = []
        while responses.count < count {
            if let (response, used) = Self.parse(data) {
                responses.append(response)
                data.removeFirst(used)
                continue
            }
            guard ContinuousClock.now < deadline else {
                throw ExchangeTimedOut(
                    responses: responses.count, pending: String(decoding: data, as: UTF8.self))
            }
            var wait = timeval(tv_sec: 1, tv_usec: 0)
            setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
            var buffer = [UInt8](repeating: 0, count: 16_384)
            let received = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if received == 0 { throw POSIXError(.ECONNRESET) }
            if received > 0 { data += buffer[..<received] }
        }
        return responses
    }

    /// The first whole response in `data` and how many bytes it took.
    private static func parse(_ data: [UInt8]) -> (RawResponse, Int)? {
        let separator = Array("\r\n\r\n".utf8)
        guard data.count >= 4,
            let end = (0...(data.count - 4)).first(where: { Array(data[$0..<$0 + 4]) == separator })
        else { return nil }
        let lines = String(decoding: data[..<end], as: UTF8.self).components(separatedBy: "\r\n")
        let status = Int(lines[0].split(separator: " ")[1]) ?? 0
        var headers: [String: String] = [:]
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { continue }
            headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(
                in: .whitespaces)
        }
        let length = Int(headers["content-length"] ?? "0") ?? 0
        guard data.count >= end + 4 + length else { return nil }
        let body = String(decoding: data[(end + 4)..<(end + 4 + length)], as: UTF8.self)
        return (RawResponse(status: status, headers: headers, body: body), end + 4 + length)
    }
}

/// Counts the reads that reach it from the handlers behind it.
final class ReadCounter: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = Any
    private(set) var count = 0

    func read(context: ChannelHandlerContext) {
        count += 1
        context.read()
    }
}
