internal import Logging
internal import NIOCore
internal import NIOSSL
internal import NIOTLS
internal import PlexWire

/// Cuts the byte stream into frames and hands each straight to its ``FrameSession``; enforces the
/// handshake deadline and the pre-handshake buffer limit; reports the channel's end.
///
/// This does the work of `ByteToMessageHandler(FrameDecoder())` without passing each frame down the
/// pipeline as a boxed `NIOAny` (a heap allocation per frame, on the hot path). Frames that arrive whole
/// are sliced out of the read buffer without copying. A partial frame is copied once into `pending`, a
/// buffer sized for the whole frame as soon as its length prefix is known, and the following reads are
/// appended to it in place; so a frame arriving in k pieces costs O(n) bytes copied, not O(n·k).
final class FrameSessionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    /// The limits the handler enforces.
    struct Limits {
        /// The largest frame accepted once the handshake has finished (length prefix excluded).
        var maximumFrameSize: Int
        /// The largest frame accepted before the handshake has finished (length prefix excluded); also the
        /// most a connection buffers before then.
        var handshakeBufferLimit: Int
        /// How long the handshake may take, from the moment the connection is open (TLS included).
        var handshakeTimeout: Duration
    }

    /// Whether the connection runs over TLS: the handler then sits behind the TLS handler and reads the
    /// peer's certificate when TLS has verified it.
    let tls: Bool

    let session: FrameSession
    let side: HandshakeStateMachine.Side
    let logger: Logger
    let counters: TrafficCounters
    let limits: Limits
    /// A partial frame: the only reference to its storage until it holds the whole frame, so appending
    /// to it never copies what it already holds.
    private(set) var pending: ByteBuffer?
    /// Set once the session is established; from then on the full maximum frame size applies.
    private var established = false
    private var deadline: Scheduled<Void>?
    private var started = false
    private var remote = "unknown"

    init(
        session: FrameSession, side: HandshakeStateMachine.Side, logger: Logger, counters: TrafficCounters,
        limits: Limits, tls: Bool = false
    ) {
        self.tls = tls
        self.session = session
        self.side = side
        self.logger = logger
        self.counters = counters
        self.limits = limits
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { start(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        start(context: context)
        context.fireChannelActive()
    }

    /// Arms the handshake deadline and, on the initiator, sends the hello; once per connection.
    private func start(context: ChannelHandlerContext) {
        guard !started else { return }
        started = true
        remote = context.channel.remoteAddress.map { "\($0)" } ?? "unknown"
        let session = self.session
        let timeout = limits.handshakeTimeout
        let remote = self.remote
        deadline = context.eventLoop.scheduleTask(in: .nanoseconds(Int64(clamping: timeout.clampedNanoseconds))) {
            guard session.isHandshaking else { return }
            let error = TransportError(.timeout, "handshake did not finish in \(timeout)")
            session.refusals.log(
                .warning, .handshakeTimedOut, "handshake timed out",
                metadata: ["error": "\(error)", "remote": "\(remote)"])
            session.fail(error)
        }
        if side == .initiator { session.start() }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = Self.unwrapInboundIn(data)
        if !established && !tls && side == .acceptor && pending == nil && Self.startsTLSRecord(incoming) {
            // A TLS client at a node without TLS: say so in a plain frame its TLS guard can read.
            session.refusals.log(
                .warning, .wrongSecurity, "refusing a TLS peer: this node runs without TLS",
                metadata: ["remote": "\(remote)"])
            session.refuse(
                "this node runs without TLS, and the peer started a TLS handshake (a cluster is all TLS or all plain)")
            return
        }
        if var buffer = pending.take() {
            // `take()` leaves `buffer` the only reference to its storage: this appends without copying it.
            buffer.writeBuffer(&incoming)
            let before = buffer.readableBytes
            guard deliverFrames(from: &buffer, context: context) else { return }
            if buffer.readableBytes == 0 {
                pending = nil
            } else if buffer.readableBytes == before {
                // Still the same partial frame: keep accumulating in place, sized for the whole frame.
                reserveWholeFrame(in: &buffer)
                pending = buffer
            } else {
                // Delivered frames share this storage; the rest (from this read only) moves to its own buffer.
                pending = keep(&buffer)
            }
        } else {
            guard deliverFrames(from: &incoming, context: context) else { return }
            // Copy only the partial frame, so the big read buffer is not held alive.
            if incoming.readableBytes > 0 { pending = keep(&incoming) }
        }
    }

    /// Decodes and delivers every whole frame at the front of `buffer`.
    /// - Returns: `false` if the connection is being closed because of a bad or oversized frame.
    private func deliverFrames(from buffer: inout ByteBuffer, context: ChannelHandlerContext) -> Bool {
        do {
            while true {
                if !established, let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self).map(Int.init),
                    length <= limits.maximumFrameSize, length > limits.handshakeBufferLimit
                {
                    refuse(
                        TransportError(
                            .limitExceeded,
                            "a frame of \(length) bytes before the handshake exceeds the limit of "
                                + "\(limits.handshakeBufferLimit) bytes"),
                        context: context)
                    return false
                }
                guard
                    let frame = try FrameDecoder.decodeFrame(from: &buffer, maximumFrameSize: limits.maximumFrameSize)
                else { return true }
                counters.received(bytes: frame.wireSize)
                session.receive(frame)
                if !established { established = session.isEstablished }
            }
        } catch let error as FrameError {
            if established {
                logger.error(
                    "closing connection after a bad frame", metadata: ["error": "\(error)", "remote": "\(remote)"])
            } else {
                session.refusals.log(
                    .error, .badFrame, "closing connection after a bad frame",
                    metadata: ["error": "\(error)", "remote": "\(remote)"])
            }
            session.fail(TransportError(.protocolViolation, error.description))
            context.close(promise: nil)
            return false
        } catch {
            context.close(promise: nil)
            return false
        }
    }

    private func refuse(_ error: TransportError, context: ChannelHandlerContext) {
        session.refusals.log(
            .error, .badFrame, "closing connection before its handshake",
            metadata: ["error": "\(error)", "remote": "\(remote)"])
        session.fail(error)
        context.close(promise: nil)
    }

    /// Copies the partial frame at the front of `buffer` into a buffer of its own, sized for the whole frame
    /// when its length prefix is there.
    private func keep(_ buffer: inout ByteBuffer) -> ByteBuffer {
        var rest = ByteBufferAllocator().buffer(
            capacity: max(wholeFrameSize(in: buffer) ?? 0, buffer.readableBytes, 64))
        rest.writeBuffer(&buffer)
        return rest
    }

    /// Grows `buffer` once to hold the whole frame it starts, if its length prefix is known.
    private func reserveWholeFrame(in buffer: inout ByteBuffer) {
        guard let whole = wholeFrameSize(in: buffer), whole > buffer.readableBytes + buffer.writableBytes else {
            return
        }
        buffer.reserveCapacity(minimumWritableBytes: whole - buffer.readableBytes)
    }

    /// The bytes of the frame at the front of `buffer`, length prefix included, if its prefix is there. The
    /// length was checked against the limits when the frame was first looked at.
    private func wholeFrameSize(in buffer: ByteBuffer) -> Int? {
        buffer.getInteger(at: buffer.readerIndex, as: UInt32.self).map { Wire.lengthPrefixSize + Int($0) }
    }

    /// Whether `buffer` starts like a TLS record: a handshake (22) or alert (21) record of TLS 1.x.
    static func startsTLSRecord(_ buffer: ByteBuffer) -> Bool {
        guard let type = buffer.getInteger(at: buffer.readerIndex, as: UInt8.self) else { return false }
        let version = buffer.getInteger(at: buffer.readerIndex + 1, as: UInt8.self)
        return (type == 22 || type == 21) && (version == nil || version == 3)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if tls, let event = event as? TLSUserEvent, case .handshakeCompleted = event {
            // Before any application byte: the peer's first handshake frame is checked against its certificate.
            switch TransportTLS.peerIdentity(on: context.channel) {
            case .success(let identity): session.certify(identity)
            case .failure(let error):
                session.refusals.log(
                    .warning, .tlsHandshake, "refusing a peer's certificate",
                    metadata: ["error": "\(error)", "remote": "\(remote)"])
                session.refuse(error.message)
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if tls, session.isHandshaking, error is NIOSSLError || error is BoringSSLError {
            let refusal = TransportError(
                .handshakeRefused, "the TLS handshake with \(remote) failed: \(TransportTLS.explain(error))")
            session.refusals.log(
                .warning, .tlsHandshake, "TLS handshake failed",
                metadata: ["error": "\(refusal)", "remote": "\(remote)"])
            session.fail(refusal)
        } else if tls, let error = error as? NIOSSLError, case .uncleanShutdown = error {
            // The peer closed without TLS's close_notify: how most clients end; not an attack.
            logger.debug("a TLS peer closed without close_notify", metadata: ["remote": "\(remote)"])
        } else if tls, error is NIOSSLError || error is BoringSSLError {
            // Bytes that are not the peer's TLS records (garbage, a replay, an injection on the path).
            let metadata: Logger.Metadata = ["error": "\(TransportTLS.explain(error))", "remote": "\(remote)"]
            if session.isEstablished {
                logger.warning("closing a TLS connection after a TLS error", metadata: metadata)
            } else {
                session.refusals.log(
                    .warning, .tlsError, "closing a TLS connection after a TLS error", metadata: metadata)
            }
        } else {
            logger.debug("connection error", metadata: ["error": "\(error)"])
        }
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        deadline = nil
        pending = nil
        session.closed(error: nil)
        context.fireChannelInactive()
    }
}

@available(*, unavailable)
extension FrameSessionHandler: Sendable {}
