internal import HummingbirdCore
internal import Logging
internal import NIOCore

/// Closes a connection that sends nothing for `timeout`, whatever it speaks. TLS has no handshake timeout, and an
/// HTTP/2 connection's idle timer (``HTTP2ConnectionManager``) runs only once its pipeline is up, so without this
/// a client that connects and stays silent (or never says hello over TLS) holds a connection slot, and a graceful
/// stop, for ever. It sits first in each connection's pipeline of the h2c and TLS listeners; plain HTTP/1.1 has the
/// raw path's idle timeout (``PlainHTTP1Handler``).
///
/// A request that waits longer than `timeout` with its client silent (a long poll over HTTP/2) is cut with its
/// connection; over HTTP/1.1 it is not.
struct SilentConnectionGuard<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner
    let timeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        do {
            try channel.pipeline.syncOperations.addHandlers(
                [IdleStateHandler(readTimeout: timeout), CloseWhenSilent()], position: .first)
        } catch {
            return channel.eventLoop.makeFailedFuture(error)
        }
        return inner.setup(channel: channel, logger: logger)
    }

    func handle(value: Value, logger: Logger) async {
        await inner.handle(value: value, logger: logger)
    }
}

/// Closes its channel on the read-idle event of the `IdleStateHandler` before it.
final class CloseWhenSilent: ChannelInboundHandler, RemovableChannelHandler, Sendable {
    typealias InboundIn = NIOAny

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case IdleStateHandler.IdleStateEvent.read = event {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }
}
