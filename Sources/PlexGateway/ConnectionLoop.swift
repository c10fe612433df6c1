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

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        inner.setup(channel: channel, logger: logger)
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
