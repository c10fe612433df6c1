import AsyncHTTPClient
import Foundation
import Glibc
import NIOCore
import NIOSSL
import PlexExamples
import PlexGateway
import PlexSpaces
import PlexTestKit
import Testing

/// The ports a live gateway listens on.
struct LivePorts: Sendable {
    var http: Int
    var http2: Int?
}

/// A two-node cluster with a gateway on node 0 serving on real sockets (its main listener, and its h2c listener
/// when configured), until `body` returns.
func withLiveGateway(
    configuration: GatewayConfiguration, _ body: @Sendable @escaping (TestCluster, LivePorts) async throws -> Void
) async throws {
    try await withTestCluster(nodes: 2, transport: .loopbackTCP, register: { $0.registerExamples() }) { cluster in
        let gateway = try Gateway(node: cluster.node(0), configuration: configuration)
        let (ports, bound) = AsyncStream.makeStream(of: (Bool, Int).self)
        let main = try gateway.application(onRunning: { bound.yield((false, $0)) })
        let http2 = gateway.plaintextHTTP2Application(onRunning: { bound.yield((true, $0)) })
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await main.run() }
            if let http2 { group.addTask { try await http2.run() } }
            var live = LivePorts(http: 0)
            var waiting = http2 == nil ? 1 : 2
            for await (isHTTP2, port) in ports {
                if isHTTP2 { live.http2 = port } else { live.http = port }
                waiting -= 1
                if waiting == 0 { break }
            }
            defer { group.cancelAll() }
            try await body(cluster, live)
        }
    }
}

@Suite("HTTP gateway: HTTP/2 (h2c and TLS with ALPN)", .timeLimit(.minutes(2)))
struct GatewayHTTP2Tests {
    @Test("the h2c listener serves the routes, many requests at once on one connection, routed to the owner")
    func plaintextHTTP2() async throws {
        var configuration = GatewayConfiguration()
        configuration.plaintextHTTP2 = GatewayListener(port: 0)
        try await withLiveGateway(configuration: configuration) { cluster, ports in
            let http2 = try #require(ports.http2)
            let key = key(ofType: Counter.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0), prefix: "h")
            try await H2CConnection.with(port: http2) { connection in
                let health = try await connection.send(.GET, "/healthz")
                #expect(health.status == 200)
                #expect(health.body.contains("alive"))
                // Twenty streams at once on the one connection, each an increment on the other node.
                let replies = try await withThrowingTaskGroup(of: (status: Int, body: String).self) { group in
                    for _ in 0..<20 {
                        group.addTask {
                            try await connection.send(.POST, "/v1/actors/counter/\(key)", body: #"{"increment":{}}"#)
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(replies.allSatisfy { $0.status == 200 }, "\(replies)")
                let counts = Set(
                    replies.compactMap { reply -> Int? in
                        let object = try? JSONSerialization.jsonObject(with: Data(reply.body.utf8)) as? [String: Any]
                        return object?["count"] as? Int
                    })
                #expect(counts == Set(1...20), "each increment answered its own count")
                let unknown = try await connection.send(.POST, "/v1/actors/nope/k", body: "{}")
                #expect(unknown.status == 404)
                #expect(unknown.body.contains("unknownActorType"))
            }
            // The HTTP/1.1 listener is still there beside it.
            let response = try await HTTPClient.shared.get(url: "http://127.0.0.1:\(ports.http)/healthz").get()
            #expect(response.status == .ok)
        }
    }

    @Test("over h2c the shortcut answers each stream as the router does, errors included")
    func plaintextHTTP2Shortcut() async throws {
        var configuration = GatewayConfiguration()
        configuration.plaintextHTTP2 = GatewayListener(port: 0)
        try await withLiveGateway(configuration: configuration) { cluster, ports in
            let owned = key(ofType: Counter.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0), prefix: "s")
            let cases: [(path: String, body: String, status: Int)] = [
                ("/v1/actors/counter/\(owned)", #"{"get":{}}"#, 200),
                ("/v1/actors/nope/k", "{}", 404),
                ("/v1/actors/plex.workflow/k", "{}", 404),
                ("/v1/actors/counter/\(owned)", #"{"increment":"#, 400),
                ("/v1/actors/counter/\(owned)", #"{"explode":{}}"#, 400),
                ("/v1/actors/counter/\(owned)?timeout_ms=0", "{}", 400),
            ]
            try await H2CConnection.with(port: try #require(ports.http2)) { connection in
                for item in cases {
                    let shortcut = try await connection.send(.POST, item.path, body: item.body)
                    let router = try await connection.send(
                        .POST, ShortcutLiveTests.viaRouter(item.path), body: item.body)
                    #expect(shortcut.status == item.status, "\(item.path) \(item.body): \(shortcut.body)")
                    #expect(shortcut.status == router.status, "\(item.path) \(item.body)")
                    #expect(shortcut.body == router.body, "\(item.path) \(item.body)")
                }
            }
        }
    }

    @Test("the h2c listener asks for the same bearer token")
    func plaintextHTTP2Token() async throws {
        var configuration = GatewayConfiguration(bearerToken: "s3cret")
        configuration.plaintextHTTP2 = GatewayListener(port: 0)
        try await withLiveGateway(configuration: configuration) { _, ports in
            try await H2CConnection.with(port: try #require(ports.http2)) { connection in
                #expect(try await connection.send(.GET, "/healthz").status == 200, "health is open")
                let refused = try await connection.send(.GET, "/v1/cluster")
                #expect(refused.status == 401, "\(refused.body)")
            }
        }
    }

    @Test("with TLS the gateway speaks HTTP/2 to a client that offers it by ALPN, and HTTP/1.1 to one that does not")
    func tlsWithALPN() async throws {
        let files = try TestCertificate.write()
        var configuration = GatewayConfiguration()
        configuration.tls = GatewayTLSFiles(certificateChainFile: files.certificate, privateKeyFile: files.key)
        try await withLiveGateway(configuration: configuration) { cluster, ports in
            var tls = TLSConfiguration.makeClientConfiguration()
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(files.certificate))
            let key = key(ofType: Counter.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0), prefix: "t")
            for version in [HTTPClient.Configuration.HTTPVersion.automatic, .http1Only] {
                var settings = HTTPClient.Configuration(tlsConfiguration: tls)
                settings.httpVersion = version
                let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: settings)
                do {
                    var request = HTTPClientRequest(url: "https://localhost:\(ports.http)/v1/actors/counter/\(key)")
                    request.method = .POST
                    request.body = .bytes(ByteBuffer(string: #"{"increment":{}}"#))
                    let response = try await client.execute(request, timeout: .seconds(10))
                    let body = String(buffer: try await response.body.collect(upTo: 1 << 16))
                    #expect(response.status == .ok, "\(body)")
                    #expect(response.version == (version == .http1Only ? .http1_1 : .http2))
                    #expect(body.contains(#""node":"\#(cluster.node(1).nodeID.rawValue)""#), "\(body)")
                    // A request the shortcuts pass on reaches the router over both.
                    let health = try await client.execute(
                        HTTPClientRequest(url: "https://localhost:\(ports.http)/healthz"), timeout: .seconds(10))
                    #expect(health.status == .ok)
                    #expect(String(buffer: try await health.body.collect(upTo: 1 << 16)).contains("alive"))
                } catch {
                    try await client.shutdown()
                    throw error
                }
                try await client.shutdown()
            }
            // A client speaking plain HTTP to the TLS port gets no answer it could mistake for one.
            let plain = try? await HTTPClient.shared.get(url: "http://127.0.0.1:\(ports.http)/healthz").get()
            #expect(plain?.status != .ok)
        }
    }

    @Test("TLS files that do not load are a configuration error naming the file")
    func badTLSFiles() async throws {
        let files = try TestCertificate.write()
        try await withTestCluster(nodes: 1, transport: .inMemory, register: { _ in }) { cluster in
            for (tls, named) in [
                (
                    GatewayTLSFiles(certificateChainFile: files.certificate + ".missing", privateKeyFile: files.key),
                    "http_tls_cert_file"
                ),
                (
                    GatewayTLSFiles(certificateChainFile: files.certificate, privateKeyFile: files.certificate),
                    "http_tls_key_file"
                ),
                (GatewayTLSFiles(certificateChainFile: files.key, privateKeyFile: files.key), "http_tls_cert_file"),
                (
                    GatewayTLSFiles(certificateChainFile: files.certificate, privateKeyFile: files.key + ".other"),
                    "does the key belong to the certificate"
                ),
            ] {
                var configuration = GatewayConfiguration()
                configuration.tls = tls
                let gateway = try Gateway(node: cluster.node(0), configuration: configuration)
                let error = #expect(throws: GatewayConfigurationError.self) { _ = try gateway.application() }
                #expect(throws: GatewayConfigurationError.self, "checked before a node starts, too") {
                    try configuration.checkTLSFiles()
                }
                #expect(error?.message.contains(named) == true, "\(String(describing: error))")
            }
        }
    }

    @Test("a listener holds at most maximumConnections: one more waits until another closes")
    func connectionCap() async throws {
        var configuration = GatewayConfiguration()
        configuration.maximumConnections = 2
        try await withLiveGateway(configuration: configuration) { _, ports in
            // Two connections each keep their slot after a first answer (keep-alive): both slots taken.
            let held = try (0..<2).map { _ in try RawConnection(port: ports.http) }
            for connection in held { #expect(try connection.get("/healthz").hasPrefix("HTTP/1.1 200")) }
            let third = try RawConnection(port: ports.http)
            #expect(try third.get("/healthz", timeout: .milliseconds(500)).isEmpty, "served beyond the cap")
            held[0].close()
            // The waiting connection is accepted once a slot frees, and its request answered.
            #expect(try third.get(nil, timeout: .seconds(10)).hasPrefix("HTTP/1.1 200"))
            held[1].close()
            third.close()
        }
    }

    @Test("an h2c or TLS connection that sends nothing (or only the HTTP/2 preface) is closed after the idle timeout")
    func silentConnections() async throws {
        let files = try TestCertificate.write()
        var configuration = GatewayConfiguration()
        configuration.idleTimeout = .milliseconds(500)
        configuration.plaintextHTTP2 = GatewayListener(port: 0)
        configuration.tls = GatewayTLSFiles(certificateChainFile: files.certificate, privateKeyFile: files.key)
        try await withLiveGateway(configuration: configuration) { _, ports in
            // Connected, never a byte: no TLS hello on the TLS port, no preface on the h2c port.
            let silentTLS = try RawConnection(port: ports.http)
            let silentH2C = try RawConnection(port: try #require(ports.http2))
            // The HTTP/2 preface and settings, then silence: no stream ever opens.
            let prefaceOnly = try RawConnection(port: try #require(ports.http2))
            let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8) + [0, 0, 0, 4, 0, 0, 0, 0, 0]
            _ = preface.withUnsafeBytes { send(prefaceOnly.descriptor, $0.baseAddress, $0.count, 0) }
            #expect(silentTLS.closedByServer(within: .seconds(10)))
            #expect(silentH2C.closedByServer(within: .seconds(10)))
            #expect(prefaceOnly.closedByServer(within: .seconds(10)))
            for connection in [silentTLS, silentH2C, prefaceOnly] { connection.close() }
        }
    }
}

/// A blocking HTTP/1.1 connection on a plain socket, so a test controls exactly when it connects and reads.
final class RawConnection: Sendable {
    let descriptor: Int32

    init(port: Int) throws {
        descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw POSIXError(.ECONNREFUSED) }
    }

    /// Sends `GET path` (unless `nil`: only reads) and returns what arrives before `timeout` ("" if nothing).
    func get(_ path: String?, timeout: Duration = .seconds(5)) throws -> String {
        if let path {
            let request = Array("GET \(path) HTTP/1.1\r\nHost: test\r\n\r\n".utf8)
            _ = request.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
        }
        let milliseconds = Int(timeout / .milliseconds(1))
        var wait = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
        return count > 0 ? String(decoding: buffer[..<count], as: UTF8.self) : ""
    }

    /// Whether the server closes the connection within `timeout` (reading and dropping what it sends first).
    func closedByServer(within timeout: Duration) -> Bool {
        let milliseconds = Int(timeout / .milliseconds(1))
        var wait = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count == 0 { return true }  // end of stream: closed
            if count < 0 { return errno == ECONNRESET }  // timed out (still open), or reset
        }
    }

    func close() { _ = Glibc.close(descriptor) }
}
