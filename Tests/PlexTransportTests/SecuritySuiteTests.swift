import Foundation
import Logging
import NIOCore
import NIOPosix
import PlexCertificates
import PlexCore
import PlexTestKit
import PlexWire
import Synchronization
import Testing

@testable import PlexTransport

/// Forwards one connection's bytes both ways, handing what passes through to `tap`.
final class RelayHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let peer: any Channel
    let tap: (@Sendable (ByteBuffer) -> Void)?

    init(to peer: any Channel, tap: (@Sendable (ByteBuffer) -> Void)? = nil) {
        self.peer = peer
        self.tap = tap
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let buffer = Self.unwrapInboundIn(data)
        tap?(buffer)
        peer.writeAndFlush(buffer, promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        peer.close(promise: nil)
    }
}

/// A man in the middle on 127.0.0.1: relays connections to `target`, records what the diallers send, and can
/// inject bytes into a dialler's stream.
final class WireTap: Sendable {
    let server: any Channel
    let recorded = Mutex<[UInt8]>([])
    let upstreams = Mutex<[any Channel]>([])

    var address: PeerAddress { PeerAddress(host: "127.0.0.1", port: server.localAddress!.port!) }

    init(server: any Channel) { self.server = server }

    static func start(to target: PeerAddress) async throws -> WireTap {
        let box = Mutex<WireTap?>(nil)
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.autoRead, value: true)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                ClientBootstrap(group: inbound.eventLoop).connect(host: target.host, port: target.port).flatMap {
                    upstream in
                    let tap = box.withLock { $0 }!
                    tap.upstreams.withLock { $0.append(upstream) }
                    return upstream.pipeline.addHandler(RelayHandler(to: inbound)).flatMap {
                        inbound.pipeline.addHandler(
                            RelayHandler(to: upstream) { bytes in
                                tap.recorded.withLock { $0.append(contentsOf: bytes.readableBytesView) }
                            })
                    }.flatMap { inbound.setOption(.autoRead, value: true) }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let tap = WireTap(server: server)
        box.withLock { $0 = tap }
        return tap
    }

    /// Writes `bytes` into the first relayed connection, toward its target, as if the dialler had sent them.
    func inject(_ bytes: [UInt8]) async throws {
        let upstream = try #require(upstreams.withLock { $0.first })
        try await upstream.writeAndFlush(ByteBuffer(bytes: bytes)).get()
    }

    func stop() {
        server.close(promise: nil)
        for channel in upstreams.withLock({ $0 }) { channel.close(promise: nil) }
    }
}

/// The defences against an adversary on the path or with network access, each a test that fails if it breaks.
@Suite("Security: an adversary on the wire", .serialized, .timeLimit(.minutes(2)))
struct SecuritySuiteTests {
    static let marker = Array("frame-payload-that-must-not-be-seen".utf8)

    /// Two TLS nodes, `a` connected to `b` through a tap, and one frame delivered.
    func tappedPair() async throws -> (a: Endpoint, b: Endpoint, tap: WireTap, connection: any Connection) {
        let ca = try TestAuthority()
        let b = try await Endpoint.start("b") { $0.tls = try? ca.tls(node: "b") }
        let a = try await Endpoint.start("a") { $0.tls = try? ca.tls(node: "a") }
        let tap = try await WireTap.start(to: b.address)
        let connection = try await a.transport.connect(to: tap.address, delegate: a.delegate)
        connection.send(Wire.Frame(kind: .gossip, body: ByteBuffer(bytes: Self.marker)))
        try await eventually("b has the frame") { b.delegate.frames.withLock { $0.count } == 1 }
        return (a, b, tap, connection)
    }

    func noSecretsLogged(_ endpoints: Endpoint...) {
        for endpoint in endpoints {
            for line in endpoint.logs.all {
                #expect(!line.contains("secret-0123456789"), "the cluster secret in a log line: \(line)")
                #expect(!line.contains("PRIVATE KEY"), "key material in a log line: \(line)")
            }
        }
    }

    @Test("over TLS the path sees no frame: neither the payload nor the handshake's cluster name")
    func confidentiality() async throws {
        let (a, b, tap, _) = try await tappedPair()
        let seen = tap.recorded.withLock { $0 }
        #expect(seen.count > 200, "the tap saw the dialler's bytes")
        #expect(!seen.contains(subsequence: Self.marker), "the payload crossed in the clear")
        #expect(!seen.contains(subsequence: Array("plex-handshake".utf8)))
        tap.stop()
        await a.transport.shutdown()
        await b.transport.shutdown()
    }

    @Test("a captured TLS session replayed on a new connection delivers nothing: the node refuses it, logged")
    func replay() async throws {
        let (a, b, tap, _) = try await tappedPair()
        let captured = tap.recorded.withLock { $0 }
        let raw = try await rawConnection(to: b.address, sending: captured)
        try await eventually("the node closes the replaying connection") { !raw.isActive }
        #expect(b.delegate.frames.withLock { $0.count } == 1, "no replayed frame was delivered")
        #expect(b.delegate.established.withLock { $0.count } == 1, "no second session")
        try await eventually("logged with the remote address") {
            b.logs.all.contains { $0.contains("TLS handshake failed") && $0.contains("127.0.0.1") }
        }
        noSecretsLogged(a, b)
        tap.stop()
        await a.transport.shutdown()
        await b.transport.shutdown()
    }

    @Test("garbage injected into an established TLS connection closes it; nothing is delivered; logged")
    func injection() async throws {
        let (a, b, tap, connection) = try await tappedPair()
        // A well-formed plain frame, injected on the path: to TLS it is garbage.
        var frame = ByteBuffer()
        frame.writeFrame(Wire.Frame(kind: .gossip, body: ByteBuffer(bytes: Self.marker)))
        try await tap.inject(Array(frame.readableBytesView) + Array(repeating: 0x17, count: 64))
        try await eventually("the connection is closed") {
            do {
                try connection.checkedSend(Wire.Frame(kind: .gossip, body: ByteBuffer(bytes: [1])))
                return false
            } catch let error as TransportError {
                return error.code == .connectionClosed
            }
        }
        #expect(b.delegate.frames.withLock { $0.count } == 1, "the injected frame was not delivered")
        try await eventually("logged") {
            b.logs.all.contains {
                $0.contains("closing a TLS connection after a TLS error") && $0.contains("127.0.0.1")
            }
        }
        noSecretsLogged(a, b)
        tap.stop()
        await a.transport.shutdown()
        await b.transport.shutdown()
    }

    /// Raises this process's open-file limit to `wanted` if the hard limit allows; whether it is that high now.
    static func openFiles(_ wanted: rlim_t) -> Bool {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return false }
        if limit.rlim_cur >= wanted { return true }
        guard limit.rlim_max >= wanted else { return false }
        limit.rlim_cur = wanted
        return setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0
    }

    @Test(
        "a stranger opening 2,000 connections and sending nothing: at most 1,024 held, the rest refused at once and logged at most once a second; all closed at the handshake deadline (logged at most once a second); a real peer gets in",
        .enabled(if: SecuritySuiteTests.openFiles(8192), "needs 8,192 open files"))
    func connectionFlood() async throws {
        let ca = try TestAuthority()
        // A deadline long enough that all 2,000 are open before the first is cut, even on a slow, busy machine.
        let node = try await Endpoint.start("b", handshakeTimeout: .seconds(25)) { $0.tls = try? ca.tls(node: "b") }
        let started = ContinuousClock.now
        let address = node.address
        // Opened 100 at a time.
        var held: [any Channel] = []
        for _ in 0..<20 {
            held += await withTaskGroup(of: (any Channel)?.self) { group in
                for _ in 0..<100 { group.addTask { try? await rawConnection(to: address, sending: []) } }
                return await group.reduce(into: []) { if let channel = $1 { $0.append(channel) } }
            }
            #expect(node.transport.openAcceptedConnections <= 1024)
        }
        #expect(held.count == 2000, "every stranger connection was accepted by TCP")
        try await eventually("the ones past the cap are closed at once") {
            held.filter(\.isActive).count <= 1024
        }
        let refusals = node.logs.lines(containing: "refusing a connection")
        let elapsed = (ContinuousClock.now - started).components.seconds + 1
        #expect(!refusals.isEmpty && refusals.count <= Int(elapsed) + 1, "\(refusals.count) log lines in \(elapsed) s")
        #expect(refusals.allSatisfy { $0.contains("127.0.0.1") })
        try await eventually("all closed at the handshake deadline", within: .seconds(60)) {
            node.transport.openAcceptedConnections == 0 && held.allSatisfy { !$0.isActive }
        }
        // 1,024 handshakes timed out within a few seconds of each other: a line a second at most, not 1,024.
        let timeouts = node.logs.lines(containing: "handshake timed out")
        let total = (ContinuousClock.now - started).components.seconds + 1
        #expect(!timeouts.isEmpty && timeouts.count <= Int(total) + 1, "\(timeouts.count) lines in \(total) s")
        let a = try await Endpoint.start("a") { $0.tls = try? ca.tls(node: "a") }
        let connection = try await a.transport.connect(to: node.address, delegate: a.delegate)
        #expect(connection.peer.certified == .node("b"))
        noSecretsLogged(a, node)
        for channel in held { try? await channel.close() }
        await a.transport.shutdown()
        await node.transport.shutdown()
    }
}

extension Array where Element == UInt8 {
    func contains(subsequence: [UInt8]) -> Bool {
        guard !subsequence.isEmpty, count >= subsequence.count else { return false }
        return (0...(count - subsequence.count)).contains { start in
            self[start..<(start + subsequence.count)].elementsEqual(subsequence)
        }
    }
}
