internal import HummingbirdCore
internal import Logging
internal import NIOCore
internal import NIOHTTP2
internal import NIOSSL
internal import NIOTLS

/// A connection of the main listener with TLS: NIOSSL's server handler, then by ALPN either HTTP/2
/// (``PlainHTTP2Channel``'s pipeline, with the frame-level shortcut) or HTTP/1.1 (``PlainHTTP1Channel``'s, with
/// the raw path); a client that offers neither gets HTTP/1.1. What Hummingbird's `HTTP2UpgradeChannel` does, but
/// with the gateway's own HTTP/1.1 and HTTP/2 pipelines, so an HTTPS client's actor calls take the same
/// shortcuts as a plain one's.
struct TLSGatewayChannel: ServerChildChannel, HTTPChannelHandler {
    typealias Negotiated = NIONegotiatedHTTPVersion<PlainHTTP1Channel.Value, PlainHTTP2Channel.Value>

    struct Value: ServerChildChannelValue {
        let channel: any Channel
        /// The pipeline ALPN chose, once the handshake is done.
        let negotiated: EventLoopFuture<Negotiated>
    }

    /// The server's TLS context, offering `h2` and `http/1.1` by ALPN.
    let context: NIOSSLContext
    let http1: PlainHTTP1Channel
    let http2: PlainHTTP2Channel

    var responder: Responder { http1.responder }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let (http1, http2) = (self.http1, self.http2)
        return channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: context))
            let alpn = NIOTypedApplicationProtocolNegotiationHandler<Negotiated> { result in
                switch result {
                case .negotiated("h2"):
                    return http2.setup(channel: channel, logger: logger).map { .http2($0) }
                case .negotiated("http/1.1"), .fallback:
                    return http1.setup(channel: channel, logger: logger).map { .http1_1($0) }
                case .negotiated:
                    // We offer only those two, so a client that picked another broke the protocol.
                    return channel.close().flatMapThrowing { throw NIOHTTP2Errors.invalidALPNToken() }
                }
            }
            try channel.pipeline.syncOperations.addHandler(alpn)
            return Value(channel: channel, negotiated: alpn.protocolNegotiationResult)
        }
    }

    func handle(value: Value, logger: Logger) async {
        do {
            switch try await value.negotiated.get() {
            case .http1_1(let connection): await http1.handle(value: connection, logger: logger)
            case .http2(let connection): await http2.handle(value: connection, logger: logger)
            }
        } catch {
            logger.debug("TLS connection ended before ALPN chose a protocol: \(error)")
        }
    }
}
