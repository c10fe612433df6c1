public import Hummingbird
internal import NIOCore

/// The gateway's request context: Hummingbird's core context and the channel the request came on (an HTTP/2
/// stream's own channel, or the HTTP/1.1 connection), for the routes that need to know which.
public struct GatewayRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    /// Whether the request came on an HTTP/2 stream: a stream's channel is a child of its connection's, itself
    /// the listener's child, where an HTTP/1.1 request's channel is the connection's.
    var isHTTP2: Bool { channel.parent?.parent != nil }

    /// Whether the client of this request is still there (``ClientPresence``), when the connection's handler can
    /// tell: an HTTP/2 stream's client is gone when the stream ends or the client closes its side of the
    /// connection; an HTTP/1.1 one when it closes its side of the connection (or it ends). None for a channel the
    /// gateway did not set up (the router's tests).
    func clientPresence() async -> [ClientPresence] {
        let channel = self.channel
        guard isHTTP2, let connection = channel.parent else {
            let own = try? await channel.eventLoop.submit {
                try channel.pipeline.syncOperations.handler(type: PlainHTTP1Handler.self).clientPresence()
            }.get()
            return own.map { [$0] } ?? []
        }
        let stream = ClientPresence(closing: channel)
        let own = try? await connection.eventLoop.submit {
            try connection.pipeline.syncOperations.handler(type: HTTP2ConnectionManager.self).clientPresence()
        }.get()
        return [stream] + (own.map { [$0] } ?? [])
    }
}
