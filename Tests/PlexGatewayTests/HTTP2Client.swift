import Foundation
import NIOCore
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import NIOPosix
import PlexTestKit

/// A minimal HTTP/2 client without TLS (h2c, prior knowledge): one connection, one stream per request, so that
/// the tests check the gateway's h2c listener with a real HTTP/2 peer (AsyncHTTPClient speaks HTTP/2 over TLS
/// only).
struct H2CConnection: Sendable {
    let channel: any Channel
    let multiplexer: NIOHTTP2Handler.AsyncStreamMultiplexer<Void>

    /// Connects to `127.0.0.1:port`, runs `body`, and closes the connection.
    static func with<T: Sendable>(
        port: Int, _ body: @Sendable (H2CConnection) async throws -> T
    ) async throws -> T {
        let connection = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: "127.0.0.1", port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    let multiplexer = try channel.pipeline.syncOperations.configureAsyncHTTP2Pipeline(
                        mode: .client
                    ) { stream in stream.eventLoop.makeSucceededVoidFuture() }
                    return H2CConnection(channel: channel, multiplexer: multiplexer)
                }
            }
        do {
            let result = try await body(connection)
            try? await connection.channel.close()
            return result
        } catch {
            try? await connection.channel.close()
            throw error
        }
    }

    /// Sends one request on a new stream; returns the status and the body.
    func send(_ method: HTTPMethod, _ uri: String, body: String? = nil) async throws -> (status: Int, body: String) {
        let stream = try await multiplexer.openStream { stream in
            stream.eventLoop.makeCompletedFuture {
                try stream.pipeline.syncOperations.addHandler(HTTP2FramePayloadToHTTP1ClientCodec(httpProtocol: .http))
                return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                    wrappingChannelSynchronously: stream)
            }
        }
        return try await stream.executeThenClose { inbound, outbound in
            var head = HTTPRequestHead(version: .http2, method: method, uri: uri)
            head.headers.add(name: "host", value: "127.0.0.1")
            if let body { head.headers.add(name: "content-length", value: "\(body.utf8.count)") }
            try await outbound.write(.head(head))
            if let body { try await outbound.write(.body(.byteBuffer(ByteBuffer(string: body)))) }
            try await outbound.write(.end(nil))
            var status = 0
            var text = ""
            for try await part in inbound {
                switch part {
                case .head(let response): status = Int(response.status.code)
                case .body(let buffer): text += String(buffer: buffer)
                case .end: return (status, text)
                }
            }
            return (status, text)
        }
    }
}

extension H2CConnection {
    /// What came back on a stream opened with ``exchange(_:)``.
    struct Exchange: Sendable {
        var status: Int?
        var body = ""
        /// The error code of a `RST_STREAM` the server sent (or the stream error NIOHTTP2 raised), if any.
        var reset: String?
    }

    /// Opens a stream, writes `payloads` as they are (frames the HTTP/1 codec would never make: a body in
    /// several `DATA` frames, a lying `content-length`, a reset), and reads until the stream ends or is reset.
    func exchange(_ payloads: [HTTP2Frame.FramePayload]) async throws -> Exchange {
        let stream = try await multiplexer.openStream { stream in
            stream.eventLoop.makeCompletedFuture {
                try NIOAsyncChannel<HTTP2Frame.FramePayload, HTTP2Frame.FramePayload>(
                    wrappingChannelSynchronously: stream)
            }
        }
        return try await stream.executeThenClose { inbound, outbound in
            for payload in payloads { try await outbound.write(payload) }
            var exchange = Exchange()
            do {
                for try await payload in inbound {
                    switch payload {
                    case .headers(let headers):
                        exchange.status = headers.headers.first(name: ":status").flatMap(Int.init)
                        if headers.endStream { return exchange }
                    case .data(let data):
                        if case .byteBuffer(let buffer) = data.data { exchange.body += String(buffer: buffer) }
                        if data.endStream { return exchange }
                    case .rstStream(let code):
                        exchange.reset = "\(code)"
                        return exchange
                    default: break
                    }
                }
            } catch {
                exchange.reset = "\(error)"
            }
            return exchange
        }
    }

    /// The opening `HEADERS` of a POST to `path` saying `length` bytes of body follow, with `fields` besides.
    static func post(
        _ path: String, length: Int, fields: [(String, String)] = [], endStream: Bool = false
    ) -> HTTP2Frame.FramePayload {
        .headers(
            .init(
                headers: HPACKHeaders(
                    [
                        (":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", path),
                        ("content-length", "\(length)"),
                    ] + fields), endStream: endStream))
    }

    /// A `DATA` frame of `text`.
    static func data(_ text: String, endStream: Bool = false) -> HTTP2Frame.FramePayload {
        .data(.init(data: .byteBuffer(ByteBuffer(string: text)), endStream: endStream))
    }
}

/// A self-signed certificate for `localhost` and `127.0.0.1` (valid until 2126) and its key, for the TLS tests.
enum TestCertificate {
    static let certificatePEM = """
        -----BEGIN CERTIFICATE-----
        MIIBmzCCAUGgAwIBAgIUYWaw7n90OpdbMJXf5ImByLeAI1kwCgYIKoZIzj0EAwIw
        FDESMBAGA1UEAwwJbG9jYWxob3N0MCAXDTI2MTIwMzA2MzQzOVoYDzIxMjYxMTA5
        MDYzNDM5WjAUMRIwEAYDVQQDDAlsb2NhbGhvc3QwWTATBgcqhkjOPQIBBggqhkjO
        PQMBBwNCAAQjU1SDTAun8CfQjk2/Y20o068pOqmK7njhwrxBgvD8HSu52+0ay26s
        NB07yWU77SbEEBLWlg7pMWUJkzfCqh6qo28wbTAdBgNVHQ4EFgQUDurAawNva1b3
        D4y1zM0zKxjjyN0wHwYDVR0jBBgwFoAUDurAawNva1b3D4y1zM0zKxjjyN0wDwYD
        VR0TAQH/BAUwAwEB/zAaBgNVHREEEzARgglsb2NhbGhvc3SHBH8AAAEwCgYIKoZI
        zj0EAwIDSAAwRQIgLKxswdAM9ThgeM1wQputPqUdclMNptxqtRc2epy1OtMCIQDx
        01wobP7jQQYMR7Emt42K1oy5IF2TCBCthnC74JofYw==
        -----END CERTIFICATE-----
        """
    static let privateKeyPEM = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgEUOGPrt20A/SyMbm
        vNx2mkYEiyFZhLbN11UuD6NFkIahRANCAAQjU1SDTAun8CfQjk2/Y20o068pOqmK
        7njhwrxBgvD8HSu52+0ay26sNB07yWU77SbEEBLWlg7pMWUJkzfCqh6q
        -----END PRIVATE KEY-----
        """

    /// A key that belongs to no certificate here.
    static let otherPrivateKeyPEM = """
        -----BEGIN PRIVATE KEY-----
        MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgmBRAUxY1Vuzy2fhy
        IOkIct+5MwGVUIVu5kXAIcru6yyhRANCAARns1hWdeuc5lz3fxTc8cNDYI1xGkq1
        P+LxAOE1tEB5bzl2od5vqQvU9WexJvZndWwtt6ZEo7Q6hg0ztu7s90fH
        -----END PRIVATE KEY-----
        """

    /// Writes both to a new directory (under one per test process, removed at exit); returns the files.
    static func write() throws -> (certificate: String, key: String) {
        let directory = URL(fileURLWithPath: scratch).appendingPathComponent("\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let certificate = directory.appendingPathComponent("cert.pem").path
        let key = directory.appendingPathComponent("key.pem").path
        try certificatePEM.write(toFile: certificate, atomically: true, encoding: .utf8)
        try privateKeyPEM.write(toFile: key, atomically: true, encoding: .utf8)
        try otherPrivateKeyPEM.write(toFile: key + ".other", atomically: true, encoding: .utf8)
        return (certificate, key)
    }
}

/// This test process's directory for certificate files, removed at exit.
private let scratch = processScratchDirectory("plex-gateway-tls-tests")

/// HTTP/2 spoken frame by frame on a blocking socket, for what no well-behaved client does: sending new streams
/// after the server's `GOAWAY` has left, as a client does whose requests cross the server's on the wire. Used by
/// one task at a time.
final class RawH2Connection: @unchecked Sendable {
    /// What came back on one stream.
    struct Outcome: Equatable {
        var answered = false
        var resetCode: UInt32?
    }

    let socket: RawConnection
    private var encoder = HPACKEncoder(allocator: ByteBufferAllocator())
    private var received: [UInt8] = []
    private(set) var outcomes: [UInt32: Outcome] = [:]
    /// A `GOAWAY` received: its last stream id and error code.
    struct GoAway: Equatable {
        var last: UInt32
        var code: UInt32
    }

    private(set) var goAways: [GoAway] = []

    /// Whether the connection closed, how many `GOAWAY`s carried an error code, the streams neither answered nor
    /// refused (`REFUSED_STREAM`) nor beyond the last `GOAWAY`'s last stream id, and how many were answered.
    func summary() -> (closed: Bool, errors: Int, unexplained: [UInt32], answered: Int) {
        let last = goAways.last?.last ?? .max
        let unexplained = streams.filter { stream in
            let outcome = outcomes[stream] ?? Outcome()
            return !outcome.answered && outcome.resetCode != 7 && stream <= last
        }
        return (closed, goAways.filter { $0.code != 0 }.count, unexplained, outcomes.values.filter(\.answered).count)
    }

    /// Whether some stream was answered.
    var hasAnswer: Bool { outcomes.values.contains { $0.answered } }

    /// The `GOAWAY`s that say something went wrong.
    var errorGoAways: [GoAway] { goAways.filter { $0.code != 0 } }
    private(set) var closed = false

    /// Connects and sends the preface with `settings` (identifier, value).
    init(port: Int, settings: [(UInt16, UInt32)] = []) throws {
        socket = try RawConnection(port: port)
        let payload = settings.flatMap {
            withUnsafeBytes(of: $0.0.bigEndian, Array.init) + withUnsafeBytes(of: $0.1.bigEndian, Array.init)
        }
        write(Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + Self.frame(type: 4, flags: 0, stream: 0, payload))
    }

    static func frame(type: UInt8, flags: UInt8, stream: UInt32, _ payload: [UInt8]) -> [UInt8] {
        let length = payload.count
        return [UInt8(length >> 16 & 0xff), UInt8(length >> 8 & 0xff), UInt8(length & 0xff), type, flags]
            + withUnsafeBytes(of: (stream & 0x7fff_ffff).bigEndian, Array.init) + payload
    }

    private func write(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { send(socket.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
    }

    /// The streams opened so far, in order.
    private(set) var streams: [UInt32] = []

    /// POSTs of `body` on `count` new streams, to `path` and `alternate` in turn.
    func burst(_ count: Int, path: String, alternate: String, body: String) throws {
        for index in 0..<count {
            let stream = UInt32(streams.count * 2 + 1)
            try post(stream: stream, path: index.isMultiple(of: 2) ? path : alternate, body: body)
            streams.append(stream)
        }
    }

    /// A POST of `body` to `path` on stream `stream`: a HEADERS frame, then a DATA frame ending the stream.
    func post(stream: UInt32, path: String, body: String) throws {
        var block = ByteBuffer()
        try encoder.encode(
            headers: HPACKHeaders([
                (":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", path),
                ("content-length", "\(body.utf8.count)"),
            ]), to: &block)
        write(
            Self.frame(type: 1, flags: 0x4, stream: stream, Array(block.readableBytesView))
                + Self.frame(type: 0, flags: 0x1, stream: stream, Array(body.utf8)))
    }

    /// A GET of `path` on a new stream whose request never ends: a HEADERS frame without `END_STREAM`.
    func openGet(path: String) throws {
        let stream = UInt32(streams.count * 2 + 1)
        var block = ByteBuffer()
        try encoder.encode(
            headers: HPACKHeaders([
                (":method", "GET"), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", path),
            ]), to: &block)
        write(Self.frame(type: 1, flags: 0x4, stream: stream, Array(block.readableBytesView)))
        streams.append(stream)
    }

    /// Whether the server's SETTINGS arrived.
    private(set) var settled = false

    /// Reads frames until the server closes the connection, `until` holds, or `timeout` passes; acknowledges
    /// SETTINGS and PINGs.
    func read(timeout: Duration, until: (RawH2Connection) -> Bool = { _ in false }) {
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while !closed, !until(self), ContinuousClock.now < deadline {
            var wait = timeval(tv_sec: 0, tv_usec: 100_000)
            setsockopt(socket.descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
            let count = buffer.withUnsafeMutableBytes { recv(socket.descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 || (count < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
                closed = true
            } else if count > 0 {
                received += buffer[..<count]
                parse()
            }
        }
    }

    private func parse() {
        while received.count >= 9 {
            let length = Int(received[0]) << 16 | Int(received[1]) << 8 | Int(received[2])
            guard received.count >= 9 + length else { return }
            let (type, flags) = (received[3], received[4])
            let stream = received[5..<9].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } & 0x7fff_ffff
            let payload = Array(received[9..<9 + length])
            received.removeFirst(9 + length)
            func word(_ at: Int) -> UInt32 { payload[at..<at + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) } }
            switch type {
            case 0 where flags & 0x1 != 0, 1 where flags & 0x1 != 0:
                outcomes[stream, default: Outcome()].answered = true
            case 3: outcomes[stream, default: Outcome()].resetCode = word(0)
            case 4 where flags & 0x1 == 0:
                settled = true
                write(Self.frame(type: 4, flags: 0x1, stream: 0, []))
            case 6 where flags & 0x1 == 0: write(Self.frame(type: 6, flags: 0x1, stream: 0, payload))
            case 7: goAways.append(GoAway(last: word(0) & 0x7fff_ffff, code: word(4)))
            default: break
            }
        }
    }
}
