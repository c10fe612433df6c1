public import Logging
internal import NIOCore
internal import NIOPosix
internal import NIOSSL
internal import PlexCore
public import PlexWire
internal import Synchronization

/// Frames over TCP with SwiftNIO: length-prefixed frames, TCP_NODELAY, batched writes, HMAC handshake; with
/// ``Configuration/tls``, all of it inside mutual TLS 1.3.
public final class TCPTransport: Transport {
    /// Settings for the TCP transport.
    public struct Configuration: Sendable {
        /// Cluster name, secret and handshake timeout.
        public var handshake: HandshakeConfiguration
        /// The largest frame accepted from a peer, in bytes. Default: 16 MiB.
        public var maximumFrameSize: Int
        /// How long `connect` waits for TCP to connect. Default: 2 seconds.
        public var connectTimeout: Duration
        /// The most bytes a connection may buffer before its handshake has finished: a frame announcing more
        /// (before the handshake) closes the connection with ``TransportError/Code/limitExceeded``, logged.
        /// Handshake frames are a few hundred bytes. Default: 64 KiB.
        public var handshakeBufferLimit: Int
        /// The most accepted connections open at once, handshaking or established. A connection accepted
        /// past it is closed at once, logged with ``TransportError/Code/limitExceeded``. Connections this
        /// transport opens are not counted. Default: 1,024.
        public var maximumConnections: Int
        /// Mutual TLS for every connection, or `nil` for plain TCP. A TLS end and a plain one refuse each
        /// other, each saying why. The HMAC handshake runs inside TLS as well. Default: `nil`.
        public var tls: TransportTLS?
        /// How often one reason for refusing connections before their handshake (a wrong secret, a handshake
        /// deadline, garbage, plain text at a TLS node, the connection cap) is logged at most; the next line
        /// counts the ones in between (`refused.unlogged`), so a stranger's flood cannot flood the log.
        /// Default: 1 s.
        public var refusalLogInterval: Duration

        /// Creates a configuration.
        public init(
            handshake: HandshakeConfiguration, maximumFrameSize: Int = Wire.defaultMaximumFrameSize,
            connectTimeout: Duration = .seconds(2), handshakeBufferLimit: Int = 64 * 1024,
            maximumConnections: Int = 1024, tls: TransportTLS? = nil, refusalLogInterval: Duration = .seconds(1)
        ) {
            self.tls = tls
            self.refusalLogInterval = refusalLogInterval
            self.handshake = handshake
            self.maximumFrameSize = maximumFrameSize
            self.connectTimeout = connectTimeout
            self.handshakeBufferLimit = handshakeBufferLimit
            self.maximumConnections = maximumConnections
        }
    }

    let configuration: Configuration
    let group: any EventLoopGroup
    /// The loop outgoing connections use, so callers that prefer its executor make no thread hops.
    let clientLoop: any EventLoop
    let clientExecutor: EventLoopTaskExecutor
    let logger: Logger
    private let identity: Mutex<PeerIdentity>
    let counters = TrafficCounters()

    public var statistics: TransportStatistics { counters.snapshot }

    public var taskExecutor: (any TaskExecutor)? { clientExecutor }
    private let channels = Mutex<(server: (any Channel)?, children: [ObjectIdentifier: any Channel])>((nil, [:]))
    /// Accepted connections open now, handshaking or established.
    private let acceptedConnections = Atomic<Int>(0)
    /// Refusals before the handshake of connections others open, logged at most once per reason per interval.
    private let refusals: RefusalLog
    /// Refusals of this node's own dials, logged every time.
    private let dialRefusals: RefusalLog

    /// Creates a transport on NIO's shared multi-threaded event loop group.
    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.group = MultiThreadedEventLoopGroup.singleton
        self.clientLoop = group.next()
        self.clientExecutor = EventLoopTaskExecutor(eventLoop: clientLoop)
        self.logger = logger
        self.refusals = RefusalLog(logger: logger, interval: configuration.refusalLogInterval)
        self.dialRefusals = RefusalLog(logger: logger, interval: .zero)
        self.identity = Mutex(
            PeerIdentity(role: .client, nodeID: .init(unchecked: "client"), incarnation: 0, listenAddress: ""))
    }

    public func setLocalIdentity(_ identity: PeerIdentity) {
        self.identity.withLock { $0 = identity }
    }

    var localIdentity: PeerIdentity { identity.withLock { $0 } }

    public func bind(_ address: PeerAddress, delegate: any ConnectionDelegate) async throws -> PeerAddress {
        let bootstrap = ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.autoRead, value: false)  // no accepts before startAccepting()
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            .childChannelInitializer { [self] channel in
                // A failed initializer makes NIO close the accepted channel at once.
                guard admit(channel) else {
                    return channel.eventLoop.makeFailedFuture(
                        TransportError(.limitExceeded, "\(configuration.maximumConnections) connections are open"))
                }
                return channel.eventLoop.makeCompletedFuture {
                    try self.installHandlers(on: channel, side: .acceptor, delegate: delegate, onEstablished: nil)
                }
            }
        let server: any Channel
        do {
            server = try await bootstrap.bind(host: address.host, port: address.port).get()
        } catch {
            throw TransportError(.connectFailed, "cannot listen on \(address): \(error)")
        }
        channels.withLock { $0.server = server }
        let bound = PeerAddress(host: address.host, port: server.localAddress?.port ?? address.port)
        logger.info("listening", metadata: ["address": "\(bound)"])
        return bound
    }

    public func startAccepting() async {
        guard let server = channels.withLock({ $0.server }) else { return }
        try? await server.setOption(.autoRead, value: true).get()
    }

    public func connect(to address: PeerAddress, delegate: any ConnectionDelegate) async throws -> any Connection {
        let promise = clientLoop.makePromise(of: (any Connection).self)
        let bootstrap = ClientBootstrap(group: clientLoop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelOption(.maxMessagesPerRead, value: 16)
            .connectTimeout(.nanoseconds(Int64(clamping: configuration.connectTimeout.clampedNanoseconds)))
            .channelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try self.installHandlers(
                        on: channel, side: .initiator, delegate: delegate,
                        onEstablished: { result in
                            switch result {
                            case .success(let connection): promise.succeed(connection)
                            case .failure(let error): promise.fail(error)
                            }
                        })
                }
            }
        do {
            _ = try await bootstrap.connect(host: address.host, port: address.port).get()
        } catch {
            promise.fail(TransportError(.connectFailed, "cannot connect to \(address): \(error)"))
            throw TransportError(.connectFailed, "cannot connect to \(address): \(error)")
        }
        return try await promise.futureResult.get()
    }

    private func installHandlers(
        on channel: any Channel, side: HandshakeStateMachine.Side, delegate: any ConnectionDelegate,
        onEstablished: (@Sendable (Result<any Connection, TransportError>) -> Void)?
    ) throws {
        let executor =
            channel.eventLoop === clientLoop ? clientExecutor : EventLoopTaskExecutor(eventLoop: channel.eventLoop)
        let sink = TCPFrameSink(channel: channel, counters: counters, executor: executor)
        let tls = configuration.tls?.current
        let session = FrameSession(
            side: side, configuration: configuration.handshake, local: localIdentity, sink: sink,
            delegate: delegate, logger: logger, maximumFrameSize: configuration.maximumFrameSize,
            requiresCertificate: tls != nil, remote: { channel.remoteAddress.map { "\($0)" } ?? "unknown" },
            // Only connections others open can be a stranger's flood; this node's own dials are paced by its
            // reconnect backoff, and their refusals say why a member cannot be reached: logged every time.
            refusals: side == .acceptor ? refusals : dialRefusals, onEstablished: onEstablished)
        let handler = FrameSessionHandler(
            session: session, side: side, logger: logger, counters: counters,
            limits: .init(
                maximumFrameSize: configuration.maximumFrameSize,
                handshakeBufferLimit: min(configuration.handshakeBufferLimit, configuration.maximumFrameSize),
                handshakeTimeout: configuration.handshake.timeout),
            tls: tls != nil)
        if let tls {
            // Each connection takes the context current when it opens: a reload applies to new connections.
            let handlers: [any ChannelHandler] = [
                PlainPeerGuard(session: session, side: side, logger: logger),
                side == .acceptor
                    ? NIOSSLServerHandler(context: tls.server)
                    : try NIOSSLClientHandler(context: tls.client, serverHostname: nil),
            ]
            try channel.pipeline.syncOperations.addHandlers(handlers)
        }
        try channel.pipeline.syncOperations.addHandler(handler)
        let key = ObjectIdentifier(channel)
        channels.withLock { $0.children[key] = channel }
        channel.closeFuture.whenComplete { [weak self] _ in
            self?.channels.withLock { _ = $0.children.removeValue(forKey: key) }
        }
    }

    /// Counts an accepted connection in, or refuses it (logged) when ``Configuration/maximumConnections``
    /// are already open. An admitted connection is counted out when it closes.
    private func admit(_ channel: any Channel) -> Bool {
        let open = acceptedConnections.wrappingAdd(1, ordering: .relaxed).newValue
        guard open > configuration.maximumConnections else {
            channel.closeFuture.whenComplete { [weak self] _ in
                self?.acceptedConnections.wrappingSubtract(1, ordering: .relaxed)
            }
            return true
        }
        acceptedConnections.wrappingSubtract(1, ordering: .relaxed)
        let limit = configuration.maximumConnections
        // The metadata is built only when the line is logged.
        refusals.log(
            .warning, .connectionLimit, "refusing a connection",
            metadata: [
                "error": "\(TransportError(.limitExceeded, "\(limit) connections are open (maximumConnections)"))",
                "remote": "\(channel.remoteAddress.map { "\($0)" } ?? "unknown")",
            ])
        return false
    }

    /// The number of accepted connections open now, handshaking or established.
    public var openAcceptedConnections: Int { acceptedConnections.load(ordering: .relaxed) }

    public func shutdown() async {
        let (server, children) = channels.withLock { state in
            defer { state = (nil, [:]) }
            return (state.server, Array(state.children.values))
        }
        try? await server?.close()
        for child in children { try? await child.close() }
    }
}
