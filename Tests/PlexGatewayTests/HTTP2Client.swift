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

    /// The opening `HEADERS` of a POST to `path` saying `length` bytes of body follow.
    static func post(_ path: String, length: Int, endStream: Bool = false) -> HTTP2Frame.FramePayload {
        .headers(
            .init(
                headers: HPACKHeaders([
                    (":method", "POST"), (":scheme", "http"), (":authority", "127.0.0.1"), (":path", path),
                    ("content-length", "\(length)"),
                ]), endStream: endStream))
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
