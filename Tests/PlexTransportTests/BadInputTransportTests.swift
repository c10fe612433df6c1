import Logging
import NIOCore
import NIOPosix
import PlexExamples
import PlexSpaces
import PlexTestKit
import PlexWire
import Testing

/// Opens a raw TCP connection to `address` and sends `bytes` (no handshake, no framing rules).
func rawConnection(to address: PeerAddress, sending bytes: [UInt8]) async throws -> any Channel {
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .connect(host: address.host, port: address.port).get()
    if !bytes.isEmpty { try await channel.writeAndFlush(ByteBuffer(bytes: bytes)).get() }
    return channel
}

@Suite("Bad input on the wire", .timeLimit(.minutes(1)))
struct BadInputTransportTests {
    static let badStreams: [(String, [UInt8])] = [
        ("oversized length prefix", [0x7F, 0xFF, 0xFF, 0xFF]),
        ("unknown version", [0, 0, 0, 12, 9, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("unknown kind", [0, 0, 0, 12, 1, 99, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
        ("length shorter than the header", [0, 0, 0, 2, 1, 1]),
        ("call before the handshake", [0, 0, 0, 12, 1, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]),
        ("garbage handshake body", [0, 0, 0, 15, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF]),
        ("HTTP instead of frames", Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)),
    ]

    @Test("a malformed stream closes only its own connection; the node keeps serving", arguments: badStreams)
    func badStream(name: String, bytes: [UInt8]) async throws {
        try await withTestCluster(nodes: 2, transport: .loopbackTCP, register: { $0.registerExamples() }) { cluster in
            let target = cluster.node(1)
            let client = try await PlexClient.connect(
                to: target.address, clusterName: "test", secret: Array("test-secret-0123456789".utf8))
            let raw = try await rawConnection(to: target.address, sending: bytes)
            try await eventually("the node closes the bad connection (\(name))") { !raw.isActive }
            // Everything else still works: the client's connection and the cluster's own links.
            let reply = try await client.ask(Counter.self, key: "still-works", .increment)
            #expect(reply.count == 1)
            #expect(try await cluster.node(0).actor(Counter.self, key: "still-works").ask(.get).count == 1)
            #expect(cluster.node(0).members.allSatisfy { $0.reachable })
            await client.close()
        }
    }

    @Test(
        "after the handshake, a client's handoff frame or a garbage admin body closes that connection only, logged",
        arguments: [
            ("handoff from a client", 8 as UInt8, [1, 2, 3] as [UInt8]), ("garbage admin body", 10, [0xFF, 0xFF]),
        ])
    func badControlFrame(name: String, kind: UInt8, body: [UInt8]) async throws {
        try await withTestCluster(nodes: 2, transport: .loopbackTCP, register: { $0.registerExamples() }) { cluster in
            let target = cluster.node(1)
            let secret = Array("test-secret-0123456789".utf8)
            let bad = try await PlexClient.connect(to: target.address, clusterName: "test", secret: secret)
            bad.sendRaw(kind: kind, body: body)
            try await eventually("the node closes the connection (\(name))") { !bad.isConnected }
            try await eventually("and logs why") {
                cluster.logs.all.contains { $0.contains("handoff frame") || $0.contains("malformed adminRequest") }
            }
            let good = try await PlexClient.connect(to: target.address, clusterName: "test", secret: secret)
            #expect(try await good.ask(Counter.self, key: "still-works", .increment).count == 1)
            #expect(cluster.node(0).members.allSatisfy { $0.reachable })
            await good.close()
            await bad.close()
        }
    }

    @Test("a node's max_connections bounds the connections it accepts; its links keep working; a freed slot is reused")
    func nodeConnectionCap() async throws {
        let cap = 4
        try await withTestCluster(
            nodes: 2, transport: .loopbackTCP,
            setup: {
                $0.maximumConnections = cap
                $0.handshakeTimeout = .seconds(60)  // the strangers below hold their slots until closed
            },
            register: { $0.registerExamples() }
        ) { cluster in
            let target = cluster.node(1)
            let key = "capped"
            #expect(try await cluster.node(0).actor(Counter.self, key: key).ask(.increment).count == 1)
            // The peer's link holds at least one slot: of `cap` strangers, at least one is closed at once.
            var strangers: [any Channel] = []
            for _ in 0..<cap { strangers.append(try await rawConnection(to: target.address, sending: [])) }
            try await eventually("a stranger past the cap is closed, logged") {
                strangers.contains { !$0.isActive }
                    && !cluster.logs.lines(containing: "TransportError.limitExceeded").isEmpty
            }
            // The cluster's own links are established connections: they keep working.
            #expect(try await cluster.node(0).actor(Counter.self, key: key).ask(.increment).count == 2)
            for stranger in strangers where stranger.isActive { try await stranger.close() }
            // Slots freed: a client gets in.
            let secret = Array("test-secret-0123456789".utf8)
            try await eventually("a client connects once the strangers are gone") {
                guard
                    let client = try? await PlexClient.connect(to: target.address, clusterName: "test", secret: secret)
                else { return false }
                defer { Task { await client.close() } }
                return try await client.ask(Counter.self, key: key, .get).count == 2
            }
        }
    }

    @Test("max_connections and handshake_timeout_ms must be positive")
    func invalidTransportLimits() throws {
        var configuration = TestCluster.configuration(directory: "/tmp/unused", seeds: [])
        configuration.maximumConnections = 0
        let connections = #expect(throws: NodeError.self) { try configuration.validate() }
        #expect(connections?.message.contains("max_connections") == true)
        configuration.maximumConnections = 1
        configuration.handshakeTimeout = .zero
        let handshake = #expect(throws: NodeError.self) { try configuration.validate() }
        #expect(handshake?.message.contains("handshake_timeout_ms") == true)
    }

    @Test("the bad frame is logged with its typed error")
    func logged() async throws {
        try await withTestCluster(nodes: 1, transport: .loopbackTCP, register: { $0.registerExamples() }) { cluster in
            let raw = try await rawConnection(to: cluster.node(0).address, sending: [0x7F, 0xFF, 0xFF, 0xFF])
            try await eventually("closed") { !raw.isActive }
            try await eventually("logged") {
                cluster.logs.all.contains { $0.contains("bad frame") && $0.contains("FrameError.tooLarge") }
            }
        }
    }

    @Test("a client with the wrong secret is refused and the node logs it")
    func wrongSecret() async throws {
        try await withTestCluster(nodes: 1, transport: .loopbackTCP, register: { $0.registerExamples() }) { cluster in
            let error = await #expect(throws: TransportError.self) {
                _ = try await PlexClient.connect(
                    to: cluster.node(0).address, clusterName: "test", secret: Array("not-the-secret-000000".utf8))
            }
            #expect(error?.code == .handshakeRefused)
            try await eventually("logged") { cluster.logs.all.contains { $0.contains("handshake refused") } }
            let otherCluster = await #expect(throws: TransportError.self) {
                _ = try await PlexClient.connect(
                    to: cluster.node(0).address, clusterName: "elsewhere", secret: Array("test-secret-0123456789".utf8))
            }
            #expect(otherCluster?.code == .handshakeRefused)
        }
    }

    @Test("nodes with different secrets never join, on both transports", arguments: TestTransport.allCases)
    func separateSecrets(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 1, transport: transport, register: { $0.registerExamples() }) { cluster in
            var configuration = TestCluster.configuration(
                directory: cluster.node(0).configuration.dataDirectory + "-intruder", seeds: [cluster.node(0).address])
            configuration.secret = Array("a-different-secret-00".utf8)
            configuration.membership.joinTimeout = .milliseconds(300)
            let choice: TransportChoice = transport == .inMemory ? .inMemory(cluster.network) : .tcp
            let intruder = try await PlexNode.start(
                configuration, transport: choice, logger: cluster.logs.logger(label: "intruder"))
            #expect(intruder.members.map(\.nodeID) == [intruder.nodeID])
            #expect(!cluster.node(0).members.contains { $0.nodeID == intruder.nodeID })
            await intruder.shutdown()
        }
    }
}
