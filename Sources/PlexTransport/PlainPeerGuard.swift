internal import Logging
internal import NIOCore
internal import PlexWire

/// Stands in front of the TLS handler on a TLS connection and looks at the peer's first bytes, so that a
/// peer without TLS learns why it is refused, and so does this end, instead of both seeing a TLS error.
///
/// A TLS record (handshake or alert) passes, and the guard leaves the pipeline. Anything else comes from a
/// peer that speaks plain frames: an acceptor answers it with a plain error frame naming the reason (which a
/// plain node's handshake reports) and closes; an initiator reads the plain error frame a node without TLS
/// sends a TLS client (see ``FrameSessionHandler``) and fails the connection with its reason.
final class PlainPeerGuard: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    /// The most plain bytes an initiator collects while looking for the peer's error frame.
    static let limit = 4096

    let session: FrameSession
    let side: HandshakeStateMachine.Side
    let logger: Logger
    private var plain: ByteBuffer?

    init(session: FrameSession, side: HandshakeStateMachine.Side, logger: Logger) {
        self.session = session
        self.side = side
        self.logger = logger
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = Self.unwrapInboundIn(data)
        if plain == nil && FrameSessionHandler.startsTLSRecord(incoming) {
            context.fireChannelRead(data)
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
            return
        }
        let remote = context.channel.remoteAddress.map { "\($0)" } ?? "unknown"
        switch side {
        case .acceptor:
            guard plain == nil else { return }
            plain = incoming
            let reason = "this node requires TLS, and the peer spoke plain text (a cluster is all TLS or all plain)"
            session.refusals.log(
                .warning, .wrongSecurity, "refusing a plain-text peer: this node requires TLS",
                metadata: ["remote": "\(remote)"])
            var buffer = context.channel.allocator.buffer(capacity: 256)
            buffer.writeFrame(HandshakeStateMachine.refusal(reason))
            // Written here, in front of TLS, so the peer reads it as the plain frame it speaks.
            // The session hears of the end from the channel closing (an acceptor awaits no handshake result).
            let channel = context.channel
            context.writeAndFlush(Self.wrapOutboundOut(buffer)).whenComplete { _ in channel.close(promise: nil) }
        case .initiator:
            if plain == nil { plain = context.channel.allocator.buffer(capacity: incoming.readableBytes) }
            plain!.writeBuffer(&incoming)
            var copy = plain!
            let frame = try? FrameDecoder.decodeFrame(from: &copy, maximumFrameSize: Self.limit)
            guard frame != nil || plain!.readableBytes >= Self.limit else { return }
            var said = ""
            if let frame, frame.kind == .errorReply,
                let body = try? Wire.decode(Plexspaces_V1_ErrorBody.self, from: frame.body)
            {
                said = ": it said \(HandshakeStateMachine.logSafe(body.message, limit: 256))"
            }
            let error = TransportError(
                .handshakeRefused,
                "the peer at \(remote) does not use TLS (a cluster is all TLS or all plain)\(said)")
            session.refusals.log(
                .warning, .wrongSecurity, "refusing a peer without TLS",
                metadata: ["error": "\(error)", "remote": "\(remote)"])
            session.fail(error)
            context.close(promise: nil)
        }
    }
}

@available(*, unavailable)
extension PlainPeerGuard: Sendable {}
