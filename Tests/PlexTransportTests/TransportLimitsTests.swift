import Logging
import NIOCore
import NIOPosix
import PlexCore
import PlexTestKit
import PlexWire
import Synchronization
import Testing

@testable import PlexTransport

/// A bare TCP transport listening on 127.0.0.1 as node `id`, with its delegate and captured logs.
struct Endpoint {
    let transport: TCPTransport
    let address: PeerAddress
    let delegate: RecordingDelegate
    let logs: LogCapture

    static let handshake = HandshakeConfiguration(clusterName: "c", secret: Array("secret-0123456789".utf8))

    static func start(
        _ id: String, incarnation: UInt64 = 1, handshakeTimeout: Duration = .seconds(5),
        configure: (inout TCPTransport.Configuration) -> Void = { _ in }
    ) async throws -> Endpoint {
        var handshake = Self.handshake
        handshake.timeout = handshakeTimeout
        var configuration = TCPTransport.Configuration(handshake: handshake)
        configure(&configuration)
        let logs = LogCapture()
        let transport = TCPTransport(configuration: configuration, logger: logs.logger(label: id))
        let delegate = RecordingDelegate()
        let address = try await transport.bind(PeerAddress(host: "127.0.0.1", port: 0), delegate: delegate)
        transport.setLocalIdentity(
            PeerIdentity(
                role: .node, nodeID: NodeID(unchecked: id), incarnation: incarnation,
                listenAddress: address.description))
        await transport.startAccepting()
        return Endpoint(transport: transport, address: address, delegate: delegate, logs: logs)
    }

    func logged(_ message: String, _ error: String) -> Bool {
        logs.all.contains { $0.contains(message) && $0.contains(error) }
    }
}

@Suite("Transport limits", .timeLimit(.minutes(1)))
struct TransportLimitsTests {
    @Test("a stranger that connects and sends nothing is closed after the handshake deadline, logged")
    func silentStranger() async throws {
        let node = try await Endpoint.start("b", handshakeTimeout: .milliseconds(500))
        let started = ContinuousClock.now
        let raw = try await rawConnection(to: node.address, sending: [])
        try await eventually("the node closes the silent connection") { !raw.isActive }
        #expect(ContinuousClock.now - started >= .milliseconds(500), "not before the deadline")
        try await eventually("logged") { node.logged("handshake timed out", "TransportError.timeout") }
        try await eventually("counted out") { node.transport.openAcceptedConnections == 0 }
        await node.transport.shutdown()
    }

    @Test("a stranger that sends one byte of a hello every 50 ms is closed after the deadline all the same")
    func slowStranger() async throws {
        let node = try await Endpoint.start("b", handshakeTimeout: .milliseconds(500))
        var client = HandshakeStateMachine(
            side: .initiator, configuration: Endpoint.handshake,
            local: PeerIdentity(role: .node, nodeID: NodeID(unchecked: "a"), incarnation: 1, listenAddress: "h:1"))
        var hello = ByteBuffer()
        for case .send(let frame) in client.start() { hello.writeFrame(frame) }
        let started = ContinuousClock.now
        let raw = try await rawConnection(to: node.address, sending: [])
        var sent = 0
        while raw.isActive, let byte = hello.readSlice(length: 1) {
            try? await raw.writeAndFlush(byte).get()
            sent += 1
            try await Task.sleep(for: .milliseconds(50))
        }
        try await eventually("closed") { !raw.isActive }
        #expect(hello.readableBytes > 0, "closed with the hello still incomplete (\(sent) bytes sent)")
        #expect(ContinuousClock.now - started >= .milliseconds(500), "not before the deadline")
        try await eventually("logged") { node.logged("handshake timed out", "TransportError.timeout") }
        await node.transport.shutdown()
    }

    @Test("a dialled connection whose peer never answers fails with timeout at the handshake deadline")
    func dialledSilentPeer() async throws {
        // A listener that accepts and never writes a byte.
        let silent = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        defer { silent.close(promise: nil) }
        var handshake = Endpoint.handshake
        handshake.timeout = .milliseconds(300)
        let dialler = TCPTransport(configuration: .init(handshake: handshake), logger: Logger(label: "a"))
        let error = await #expect(throws: TransportError.self) {
            _ = try await dialler.connect(
                to: PeerAddress(host: "127.0.0.1", port: silent.localAddress!.port!), delegate: RecordingDelegate())
        }
        #expect(error?.code == .timeout)
        await dialler.shutdown()
    }

    @Test("before the handshake, a frame header over the buffer limit closes the connection, logged")
    func preHandshakeLimit() async throws {
        let node = try await Endpoint.start("b") { $0.handshakeBufferLimit = 1024 }
        // A 16 MiB frame (the maximum frame size, so not a bad frame) announced by a stranger: refused at
        // its header, not buffered.
        let raw = try await rawConnection(to: node.address, sending: [0x01, 0x00, 0x00, 0x00, 0x01, 0x01])
        try await eventually("closed") { !raw.isActive }
        try await eventually("logged") {
            node.logged("closing connection before its handshake", "TransportError.limitExceeded")
        }
        // A real peer still gets in.
        let client = try await Endpoint.start("a")
        let connection = try await client.transport.connect(to: node.address, delegate: client.delegate)
        #expect(connection.peer.nodeID.rawValue == "b")
        await client.transport.shutdown()
        await node.transport.shutdown()
    }

    @Test("past maximumConnections a new connection is closed at once, logged; a freed slot is reused")
    func connectionCap() async throws {
        let node = try await Endpoint.start("b", handshakeTimeout: .seconds(30)) { $0.maximumConnections = 3 }
        var held: [any Channel] = []
        for _ in 0..<3 { held.append(try await rawConnection(to: node.address, sending: [])) }
        try await eventually("three connections held") { node.transport.openAcceptedConnections == 3 }
        let extra = try await rawConnection(to: node.address, sending: [])
        try await eventually("the fourth is closed") { !extra.isActive }
        try await eventually("logged") { node.logged("refusing a connection", "TransportError.limitExceeded") }
        #expect(held.allSatisfy { $0.isActive })
        #expect(node.transport.openAcceptedConnections == 3)
        // A real peer is refused too while the node is full, and gets in once a slot frees up.
        let client = try await Endpoint.start("a")
        await #expect(throws: TransportError.self) {
            _ = try await client.transport.connect(to: node.address, delegate: client.delegate)
        }
        try await held.removeFirst().close()
        try await eventually("a slot is free") { node.transport.openAcceptedConnections == 2 }
        let connection = try await client.transport.connect(to: node.address, delegate: client.delegate)
        #expect(connection.peer.nodeID.rawValue == "b")
        #expect(node.transport.openAcceptedConnections == 3)
        for channel in held { try await channel.close() }
        await client.transport.shutdown()
        await node.transport.shutdown()
    }

    @Test("an outbound frame over the maximum frame size fails alone, typed; the link stays up")
    func oversizedOutboundTCP() async throws {
        let node = try await Endpoint.start("b") { $0.maximumFrameSize = 64 * 1024 }
        let client = try await Endpoint.start("a") { $0.maximumFrameSize = 64 * 1024 }
        let connection = try await client.transport.connect(to: node.address, delegate: client.delegate)
        try await oversizedOutbound(connection: connection, receiver: node.delegate, logs: client.logs)
        await client.transport.shutdown()
        await node.transport.shutdown()
    }

    @Test("the in-memory transport fails an oversized outbound frame the same way")
    func oversizedOutboundInMemory() async throws {
        let network = InMemoryNetwork()
        let logs = LogCapture()
        let node = InMemoryTransport(
            network: network, handshake: Endpoint.handshake, logger: Logger(label: "b"), maximumFrameSize: 64 * 1024)
        let receiver = RecordingDelegate()
        let address = try await node.bind(PeerAddress(host: "b", port: 0), delegate: receiver)
        node.setLocalIdentity(
            PeerIdentity(role: .node, nodeID: NodeID(unchecked: "b"), incarnation: 1, listenAddress: "\(address)"))
        await node.startAccepting()
        let client = InMemoryTransport(
            network: network, handshake: Endpoint.handshake, logger: logs.logger(label: "a"),
            maximumFrameSize: 64 * 1024)
        let connection = try await client.connect(to: address, delegate: RecordingDelegate())
        try await oversizedOutbound(connection: connection, receiver: receiver, logs: logs)
        await node.shutdown()
    }

    func oversizedOutbound(connection: any Connection, receiver: RecordingDelegate, logs: LogCapture) async throws {
        #expect(connection.maximumFrameSize == 64 * 1024)
        let big = Wire.Frame(kind: .reply, correlationID: 5, body: ByteBuffer(repeating: 1, count: 64 * 1024))
        let error = #expect(throws: TransportError.self) { try connection.checkedSend(big) }
        #expect(error?.code == .frameTooLarge)
        // The unchecked send drops it too, and says so in the log.
        connection.send(big)
        #expect(logs.all.contains { $0.contains("dropping an outbound frame over the maximum frame size") })
        // The largest frame that fits goes through, and so does the next one: the link never closed.
        let fits = Wire.Frame(
            kind: .reply, correlationID: 6, body: ByteBuffer(repeating: 2, count: 64 * 1024 - Wire.headerSize))
        try connection.checkedSend(fits)
        try connection.checkedSend(Wire.Frame(kind: .reply, correlationID: 7, body: ByteBuffer(string: "small")))
        try await eventually("both arrive") { receiver.frames.withLock { $0.map(\.correlationID) } == [6, 7] }
        connection.close()
        try await eventually("a send on the closed connection says so") {
            do {
                try connection.checkedSend(Wire.Frame(kind: .reply, body: ByteBuffer()))
                return false
            } catch let error as TransportError {
                return error.code == .connectionClosed
            }
        }
    }
}
