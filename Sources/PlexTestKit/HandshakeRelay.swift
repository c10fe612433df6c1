internal import NIOCore
internal import NIOPosix
public import PlexTransport
internal import PlexWire
internal import Synchronization

/// A man in the middle on loopback, for testing the handshake: it accepts connections, opens its own
/// connection to a real node for each, and replays every frame between the two, optionally rewriting who
/// either side claims to be.
///
/// With no rewriting it is an honest extra hop, and handshakes through it succeed. With a rewrite the
/// proofs each side made for its own connection are relayed onto a connection whose identities differ, and
/// the handshake must refuse them. ``rewrittenFrames`` says whether a rewrite actually happened, so a test
/// cannot pass without the tampering it means to test.
public final class HandshakeRelay: Sendable {
    /// Claims the relay substitutes in a hello (the initiator's identity) or a challenge (the acceptor's);
    /// `nil` leaves a field as sent.
    public struct Claims: Sendable, CustomStringConvertible {
        /// The node id to claim.
        public var nodeID: String?
        /// The incarnation to claim.
        public var incarnation: UInt64?
        /// The listen address to claim.
        public var listenAddress: String?
        /// The role to claim (hello only: a challenge has no role).
        public var role: PeerRole?

        /// Creates claims; the default changes nothing.
        public init(
            nodeID: String? = nil, incarnation: UInt64? = nil, listenAddress: String? = nil, role: PeerRole? = nil
        ) {
            self.nodeID = nodeID
            self.incarnation = incarnation
            self.listenAddress = listenAddress
            self.role = role
        }

        var isEmpty: Bool { nodeID == nil && incarnation == nil && listenAddress == nil && role == nil }

        public var description: String {
            [
                nodeID.map { "node id \($0)" }, incarnation.map { "incarnation \($0)" },
                listenAddress.map { "listen address \($0)" }, role.map { "role \($0)" },
            ].compactMap { $0 }.joined(separator: ", ")
        }
    }

    /// Where the relay listens: connect here instead of to the target.
    public let address: PeerAddress
    private let server: any Channel
    private let counters: Counters

    final class Counters: Sendable {
        let relayed = Atomic<Int>(0)
        let rewritten = Atomic<Int>(0)
        let connections = Atomic<Int>(0)
    }

    /// Frames replayed so far, both directions.
    public var relayedFrames: Int { counters.relayed.load(ordering: .relaxed) }
    /// Frames whose claims the relay changed.
    public var rewrittenFrames: Int { counters.rewritten.load(ordering: .relaxed) }
    /// Connections accepted so far.
    public var connections: Int { counters.connections.load(ordering: .relaxed) }

    private init(address: PeerAddress, server: any Channel, counters: Counters) {
        self.address = address
        self.server = server
        self.counters = counters
    }

    /// Starts a relay on 127.0.0.1 (a free port) in front of `target`.
    /// - Parameters:
    ///   - target: The real node.
    ///   - initiator: Claims to substitute in the hello the connecting side sends.
    ///   - acceptor: Claims to substitute in the challenge the target answers with.
    public static func start(
        target: PeerAddress, rewritingInitiator initiator: Claims = .init(),
        rewritingAcceptor acceptor: Claims = .init()
    ) async throws -> HandshakeRelay {
        let counters = Counters()
        let group = MultiThreadedEventLoopGroup.singleton
        let server = try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { inbound in
                counters.connections.add(1, ordering: .relaxed)
                // The inbound channel is registered (and read) only once this future completes, so no frame
                // arrives before the outbound connection is there to take it.
                return ClientBootstrap(group: inbound.eventLoop)
                    .channelInitializer { outbound in
                        outbound.eventLoop.makeCompletedFuture {
                            try outbound.pipeline.syncOperations.addHandlers(
                                ByteToMessageHandler(FrameDecoder()),
                                RelayHandler(partner: inbound, rewrite: .challenge(acceptor), counters: counters))
                        }
                    }
                    .connect(host: target.host, port: target.port)
                    .flatMap { outbound in
                        inbound.eventLoop.makeCompletedFuture {
                            try inbound.pipeline.syncOperations.addHandlers(
                                ByteToMessageHandler(FrameDecoder()),
                                RelayHandler(partner: outbound, rewrite: .hello(initiator), counters: counters))
                        }
                    }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let port = server.localAddress?.port ?? 0
        return HandshakeRelay(address: PeerAddress(host: "127.0.0.1", port: port), server: server, counters: counters)
    }

    /// Stops listening. Relayed connections close when either end closes.
    public func close() async {
        try? await server.close()
    }
}

/// Replays frames from its channel to the partner, rewriting a hello or a challenge on the way.
private final class RelayHandler: ChannelInboundHandler {
    typealias InboundIn = Wire.Frame

    enum Rewrite {
        case hello(HandshakeRelay.Claims)
        case challenge(HandshakeRelay.Claims)
    }

    let partner: any Channel
    let rewrite: Rewrite
    let counters: HandshakeRelay.Counters

    init(partner: any Channel, rewrite: Rewrite, counters: HandshakeRelay.Counters) {
        self.partner = partner
        self.rewrite = rewrite
        self.counters = counters
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var frame = Self.unwrapInboundIn(data)
        if let rewritten = rewritten(frame) {
            frame.body = rewritten
            counters.rewritten.add(1, ordering: .relaxed)
        }
        var bytes = context.channel.allocator.buffer(capacity: frame.wireSize)
        bytes.writeFrame(frame)
        counters.relayed.add(1, ordering: .relaxed)
        partner.writeAndFlush(bytes, promise: nil)
    }

    /// The frame's body with the claims substituted, or `nil` if this frame carries none to change.
    private func rewritten(_ frame: Wire.Frame) -> ByteBuffer? {
        switch rewrite {
        case .hello(let claims):
            guard !claims.isEmpty, frame.kind == .handshake,
                var message = try? Wire.decode(Plexspaces_V1_Handshake.self, from: frame.body),
                case .hello(var hello) = message.step
            else { return nil }
            if let nodeID = claims.nodeID { hello.nodeID = nodeID }
            if let incarnation = claims.incarnation { hello.incarnation = incarnation }
            if let listenAddress = claims.listenAddress { hello.listenAddress = listenAddress }
            if let role = claims.role { hello.role = role == .node ? .node : .client }
            message.hello = hello
            return Wire.body(message)
        case .challenge(let claims):
            guard !claims.isEmpty, frame.kind == .handshakeAck,
                var message = try? Wire.decode(Plexspaces_V1_HandshakeAck.self, from: frame.body),
                case .challenge(var challenge) = message.step
            else { return nil }
            if let nodeID = claims.nodeID { challenge.nodeID = nodeID }
            if let incarnation = claims.incarnation { challenge.incarnation = incarnation }
            if let listenAddress = claims.listenAddress { challenge.listenAddress = listenAddress }
            message.challenge = challenge
            return Wire.body(message)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        partner.close(promise: nil)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
