internal import HummingbirdCore
internal import Logging
internal import NIOCore
internal import PlexTransport

/// Runs each connection's requests (an HTTP/1.1 connection's loop, or an HTTP/2 connection's streams) as tasks
/// on the event loop that owns the connection, instead of on the global pool.
///
/// A request then is read, routed, answered by a local actor and written on one thread: no wake-up of another
/// thread between the bytes arriving and the reply leaving, which on a small machine costs more than the rest of
/// the request. A call to another node, or a durable actor's journal commit, resumes on the same loop. Handlers
/// must not block (they never may: actor handlers are `async`), as a blocked handler stalls every connection on
/// its loop.
struct ConnectionLoop<Inner: ServerChildChannel>: ServerChildChannel {
    typealias Value = Inner.Value
    let inner: Inner
    /// For a plain HTTP/1.1 connection (`inner` is Hummingbird's `HTTP1Channel`): the gateway whose actor calls
    /// take the raw path (``PlainHTTP1Handler``), and the idle timeout of its connections.
    var plainHTTP1: (gateway: Gateway, idleTimeout: Duration)? = nil

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let value = inner.setup(channel: channel, logger: logger)
        guard let (gateway, idleTimeout) = plainHTTP1 else { return value }
        return value.flatMapThrowing { value in
            let pipeline = channel.pipeline.syncOperations
            // The shortcut sits right after Hummingbird's connection state handler, so that one still sees every
            // request and response (keep-alive, idle timeouts, a graceful stop). The state handler itself waits
            // until the raw path hands the connection over: until then it would see no request and take the
            // connection for idle.
            let state = try pipeline.handler(type: HTTPConnectionStateHandler.self)
            let shortcut = ShortcutHandler(gateway: gateway)
            try pipeline.addHandler(shortcut, position: .after(state))
            pipeline.removeHandler(state, promise: nil)
            let raw = PlainHTTP1Handler(gateway: gateway, idleTimeout: idleTimeout, logger: logger) { pipeline in
                try pipeline.addHandler(
                    HTTPConnectionStateHandler(idleTimeout: idleTimeout, logger: logger), position: .before(shortcut))
            }
            try pipeline.addHandler(raw, position: .first)
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        let executor = EventLoopTaskExecutor(eventLoop: value.channel.eventLoop)
        await withTaskExecutorPreference(executor) {
            await ConnectionExecutor.$current.withValue(executor) {
                await inner.handle(value: value, logger: logger)
            }
        }
    }
}

/// The executor of the loop whose connection the current request came on (`nil` outside a connection's task):
/// a local actor's turn runs there too.
enum ConnectionExecutor {
    @TaskLocal static var current: (any TaskExecutor)?
}
