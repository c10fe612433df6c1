internal import HTTPTypes
internal import HummingbirdCore
internal import Logging
internal import NIOCore
internal import NIOHTTP1
internal import NIOHTTPTypes
internal import NIOHTTPTypesHTTP1

/// An HTTP/1.1 connection (of the plain listener, or over TLS when ALPN chose HTTP/1.1): the raw path
/// (``PlainHTTP1Handler``) alone in front of Hummingbird's request loop. NIOHTTP1's codec, the HTTP types codec,
/// Hummingbird's connection state handler and ``ShortcutHandler`` join the pipeline only when the raw path hands the
/// connection over, set up as Hummingbird's `HTTP1Channel` sets up its connections: until then no read or
/// read-complete travels through them (node CPU per request about 5 % lower than with them in place,
/// `scripts/profile-http.sh`).
struct PlainHTTP1Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let gateway: Gateway
    /// How long a connection may wait for a request (``GatewayConfiguration/idleTimeout``).
    let idleTimeout: Duration
    /// Whether the connection came over TLS (the requests' scheme is then `https`).
    let secure: Bool

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let (gateway, idleTimeout, secure) = (self.gateway, self.idleTimeout, self.secure)
        return channel.eventLoop.makeCompletedFuture {
            let raw = PlainHTTP1Handler(gateway: gateway, idleTimeout: idleTimeout, logger: logger) { context in
                let pipeline = context.pipeline.syncOperations
                // Each goes right after the raw path, so they end up in the order Hummingbird's HTTP1Channel has.
                try pipeline.addHandler(ShortcutHandler(gateway: gateway), position: .after(context.handler))
                try pipeline.addHandler(
                    HTTPConnectionStateHandler(idleTimeout: idleTimeout, logger: logger),
                    position: .after(context.handler))
                try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: secure), position: .after(context.handler))
                try pipeline.configureHTTPServerPipeline(
                    position: .after(context.handler), withPipeliningAssistance: false, withErrorHandling: false,
                    withOutboundHeaderValidation: false, withEncoderConfiguration: .init(),
                    withDecoderLimitConfiguration: Self.decoderLimits)
            }
            try channel.pipeline.syncOperations.addHandler(raw)
            return try NIOAsyncChannel(
                wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    /// Hummingbird's default decoder limits, as its `HTTP1Channel` applies them.
    static var decoderLimits: NIOHTTPDecoderLimitConfiguration {
        let defaults = HTTP1Channel.Configuration.DecoderConfiguration()
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = defaults.maxHeaderFieldSize
        limits.maxHeaderListSize = defaults.maxHeaderListSize
        limits.maxHeaderFieldCount = defaults.maxHeaderFieldCount
        return limits
    }

    func handle(value: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: value, logger: logger)
    }
}
