internal import HTTPTypes
internal import HummingbirdCore
internal import Logging
internal import NIOCore
internal import NIOHTTP2
internal import NIOHTTPTypes
internal import NIOHTTPTypesHTTP2

/// An HTTP/2 connection (of the h2c listener, prior knowledge, or over TLS when ALPN chose `h2`): NIOHTTP2's
/// connection handler, the connection's manager (idle timeout, graceful stop: ``HTTP2ConnectionManager``), the
/// frame-level shortcut (``HTTP2ShortcutHandler``) and a stream multiplexer whose streams Hummingbird answers.
///
/// Hummingbird's own `HTTP2Channel` puts the multiplexer inside NIOHTTP2's handler, where no handler can see a
/// stream's frames before it has a child channel; this pipeline keeps NIOHTTP2's separate multiplexer so the
/// shortcut can answer the actor calls on frames, and sets up each other stream as Hummingbird's `HTTP2Channel`
/// does (the HTTP types codec, Hummingbird's state handler, an async channel served by the request loop).
struct PlainHTTP2Channel: ServerChildChannel, HTTPChannelHandler {
    typealias Stream = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    struct Value: ServerChildChannelValue {
        let channel: any Channel
        /// The streams the multiplexer opens, in order; finished when the connection closes.
        let streams: AsyncStream<Stream>
    }

    let responder: HTTPChannelHandler.Responder
    let gateway: Gateway
    /// How long a connection may have no open stream (``GatewayConfiguration/idleTimeout``).
    let idleTimeout: Duration

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let (gateway, idleTimeout) = (self.gateway, self.idleTimeout)
        return channel.eventLoop.makeCompletedFuture {
            let (streams, opened) = AsyncStream.makeStream(of: Stream.self)
            let pipeline = channel.pipeline.syncOperations
            try pipeline.addHandler(NIOHTTP2Handler(mode: .server))
            try pipeline.addHandler(
                HTTP2ConnectionManager(idleTimeout: .nanoseconds(Int64(clamping: idleTimeout.clampedNanoseconds))))
            try pipeline.addHandler(HTTP2ShortcutHandler(gateway: gateway))
            try pipeline.addHandler(
                HTTP2StreamMultiplexer(
                    mode: .server, channel: channel,
                    inboundStreamInitializer: { stream in
                        stream.eventLoop.makeCompletedFuture {
                            let streamPipeline = stream.pipeline.syncOperations
                            try streamPipeline.addHandler(HTTP2FramePayloadToHTTPServerCodec())
                            try streamPipeline.addHandler(
                                HTTPConnectionStateHandler(idleTimeout: idleTimeout, logger: logger))
                            opened.yield(try Stream(wrappingChannelSynchronously: stream))
                        }
                    }))
            channel.closeFuture.whenComplete { _ in opened.finish() }
            return Value(channel: channel, streams: streams)
        }
    }

    /// Serves each stream the multiplexer opens with Hummingbird's request loop (one request per stream), side by
    /// side, until the connection closes and every stream is done.
    func handle(value: Value, logger: Logger) async {
        await withDiscardingTaskGroup { group in
            for await stream in value.streams {
                group.addTask { await self.handleHTTP(asyncChannel: stream, logger: logger) }
            }
        }
    }
}
