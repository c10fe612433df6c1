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

    /// Whether the request is an HTTP/2 stream's (whose response may not carry connection-specific fields such as
    /// `Connection`, RFC 9113 §8.2.2): a stream's channel is a child of its connection's, itself the listener's
    /// child, where an HTTP/1.1 request's channel is the connection's. (Asking for the stream's identifier option
    /// instead would trap on a socket channel, which has no such option.)
    var isHTTP2: Bool { channel.parent?.parent != nil }
}
