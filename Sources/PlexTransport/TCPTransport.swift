public import Logging
internal import NIOCore
internal import NIOPosix
internal import PlexCore
public import PlexWire
internal import Synchronization

/// Frames over TCP with SwiftNIO: length-prefixed frames, TCP_NODELAY, batched writes, HMAC handshake.
public final class TCPTransport: Transport {
    /// Settings for the TCP transport.
    public struct Configuration: Sendable {
        /// Cluster name, secret and handshake timeout.
        public var handshake: HandshakeConfiguration
        /// The largest frame accepted from a peer, in bytes. Default: 16 MiB.
        public var maximumFrameSize: Int
        /// How long `connect` waits for TCP to connect. Default: 2 seconds.
        public var connectTimeout: Duration

        /// Creates a configuration.
        public init(
            handshake: HandshakeConfiguration, maximumFrameSize: Int = Wire.defaultMaximumFrameSize,
            connectTimeout: Duration = .seconds(2)
        ) {
            self.handshake = handshake
            self.maximumFrameSize = maximumFrameSize
            self.connectTimeout = connectTimeout
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

    /// Creates a transport on NIO's shared multi-threaded event loop group.
    public init(configuration: Configuration, logger: Logger) {
        self.configuration = configuration
        self.group = MultiThreadedEventLoopGroup.singleton
        self.clientLoop = group.next()
        self.clientExecutor = EventLoopTaskExecutor(eventLoop: clientLoop)
        self.logger = logger
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
                channel.eventLoop.makeCompletedFuture {
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
        let session = FrameSession(
            side: side, configuration: configuration.handshake, local: localIdentity, sink: sink,
            delegate: delegate, logger: logger, onEstablished: onEstablished)
        let handler = FrameSessionHandler(
            session: session, side: side, logger: logger, timeout: configuration.handshake.timeout, counters: counters,
            maximumFrameSize: configuration.maximumFrameSize)
        try channel.pipeline.syncOperations.addHandler(handler)
        let key = ObjectIdentifier(channel)
        channels.withLock { $0.children[key] = channel }
        channel.closeFuture.whenComplete { [weak self] _ in
            self?.channels.withLock { _ = $0.children.removeValue(forKey: key) }
        }
    }

    public func shutdown() async {
        let (server, children) = channels.withLock { state in
            defer { state = (nil, [:]) }
            return (state.server, Array(state.children.values))
        }
        try? await server?.close()
        for child in children { try? await child.close() }
    }
}

/// Writes frames to a channel, coalescing every frame queued before the event loop gets to them into
/// one buffer and one flush.
final class TCPFrameSink: FrameSink {
    /// Frames serialised as they are sent, into one buffer that the next flush writes whole.
    private struct Pending {
        var buffer: ByteBuffer?
        var frames = 0
        var scheduled = false
    }

    let channel: any Channel
    let counters: TrafficCounters
    let executor: EventLoopTaskExecutor
    private let pending = Mutex(Pending())

    init(channel: any Channel, counters: TrafficCounters, executor: EventLoopTaskExecutor) {
        self.channel = channel
        self.counters = counters
        self.executor = executor
    }

    var taskExecutor: (any TaskExecutor)? { executor }

    /// A batch this large (frames or bytes) is written at once by the event loop instead of at the end of
    /// its tick, so a long burst is pipelined with the peer instead of bouncing between the two processes as
    /// one block, each side idle while the other works. Measured with 64 callers on this 2-core VM:
    /// 113 k calls/s at the end of the tick only, 200 k with 16 or 32 frames, 130 k with 48.
    static let eagerFlushFrames = 32
    static let eagerFlushBytes = 16 * 1024

    func write(_ frame: Wire.Frame) {
        let (schedule, full) = pending.withLock { pending -> (Bool, Bool) in
            if pending.buffer == nil {
                pending.buffer = channel.allocator.buffer(capacity: max(512, frame.wireSize))
            }
            pending.buffer!.writeFrame(frame)
            pending.frames += 1
            let full =
                pending.frames >= Self.eagerFlushFrames || pending.buffer!.readableBytes >= Self.eagerFlushBytes
            if pending.scheduled { return (false, full) }
            pending.scheduled = true
            return (true, full)
        }
        if full && channel.eventLoop.inEventLoop {
            flush(endOfBatch: false)
        } else if schedule {
            channel.eventLoop.execute { self.flush(endOfBatch: true) }
        }
    }

    private func flush(endOfBatch: Bool) {
        let (buffer, frames) = pending.withLock { pending -> (ByteBuffer?, Int) in
            defer {
                pending.buffer = nil
                pending.frames = 0
                if endOfBatch { pending.scheduled = false }
            }
            return (pending.buffer, pending.frames)
        }
        guard let buffer, frames > 0 else { return }
        counters.sent(frames: frames, bytes: buffer.readableBytes)
        channel.writeAndFlush(buffer, promise: nil)
    }

    /// Writes what is queued (a refusal's reason, a last reply), then closes.
    func close() {
        if channel.eventLoop.inEventLoop {
            flush(endOfBatch: true)
            channel.close(promise: nil)
        } else {
            channel.eventLoop.execute {
                self.flush(endOfBatch: true)
                self.channel.close(promise: nil)
            }
        }
    }
}

/// Cuts the byte stream into frames and hands each straight to its ``FrameSession``; reports the
/// channel's end.
///
/// This does the work of `ByteToMessageHandler(FrameDecoder())` without passing each frame down the
/// pipeline as a boxed `NIOAny` (a heap allocation per frame, on the hot path). Frames that arrive whole
/// are sliced out of the read buffer without copying; a partial frame waits in `pending`.
final class FrameSessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    let session: FrameSession
    let side: HandshakeStateMachine.Side
    let logger: Logger
    let timeout: Duration
    let counters: TrafficCounters
    let maximumFrameSize: Int
    private var pending: ByteBuffer?

    init(
        session: FrameSession, side: HandshakeStateMachine.Side, logger: Logger, timeout: Duration,
        counters: TrafficCounters, maximumFrameSize: Int
    ) {
        self.session = session
        self.side = side
        self.logger = logger
        self.timeout = timeout
        self.counters = counters
        self.maximumFrameSize = maximumFrameSize
    }

    func channelActive(context: ChannelHandlerContext) {
        let session = self.session
        let logger = self.logger
        let timeout = self.timeout
        let remote = "\(String(describing: context.channel.remoteAddress))"
        context.eventLoop.scheduleTask(in: .nanoseconds(Int64(clamping: timeout.clampedNanoseconds))) {
            if session.isHandshaking {
                logger.warning("handshake timed out", metadata: ["remote": "\(remote)"])
                session.fail(TransportError(.timeout, "handshake did not finish in \(timeout)"))
            }
        }
        if side == .initiator { session.start() }
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = Self.unwrapInboundIn(data)
        if var buffered = pending {
            buffered.writeBuffer(&incoming)
            pending = nil
            incoming = buffered
        }
        do {
            while let frame = try FrameDecoder.decodeFrame(from: &incoming, maximumFrameSize: maximumFrameSize) {
                counters.received(bytes: frame.wireSize)
                session.receive(frame)
            }
        } catch let error as FrameError {
            logger.error(
                "closing connection after a bad frame",
                metadata: ["error": "\(error)", "remote": "\(String(describing: context.channel.remoteAddress))"])
            session.fail(TransportError(.protocolViolation, error.description))
            context.close(promise: nil)
            return
        } catch {
            context.close(promise: nil)
            return
        }
        if incoming.readableBytes > 0 {
            // Keep only the partial frame; copy so the big read buffer is not held alive.
            var rest = context.channel.allocator.buffer(capacity: max(incoming.readableBytes, 256))
            rest.writeBuffer(&incoming)
            pending = rest
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        logger.debug("connection error", metadata: ["error": "\(error)"])
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        session.closed(error: nil)
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension FrameSessionHandler: Sendable {}
