internal import PlexTransport
internal import PlexWire
internal import Synchronization

/// What a node does with the events of its connections (``CallDispatcher`` implements it).
protocol NodeEvents: AnyObject, Sendable {
    func connectionEstablished(_ connection: any Connection)
    func received(_ frame: Wire.Frame, on connection: any Connection)
    func connectionClosed(_ connection: any Connection, error: (any Error)?)
}

/// Hands transport events to the node's ``NodeEvents`` once it exists (the transport needs a delegate before
/// `bind`, and the connections a node opens need one before the node is built).
///
/// The delegate of an outgoing connection also knows the link it serves, so a reply completes its call without
/// any lookup by node id; it relays everything else to the node's root delegate.
final class NodeDelegate: ConnectionDelegate {
    private struct Targets: Sendable {
        /// Held strongly until the node stops (``unbind()``): a weak reference would give the dispatcher a
        /// side table, and every retain of it on the call path (each `ActorRef` copy) would take the slow path.
        var events: (any NodeEvents)?
        var link: PeerLink?
    }

    private let relay: NodeDelegate?
    private let targets = Mutex(Targets())

    /// The root delegate of a node (the transport's listener); ``bind(_:)-(NodeEvents)`` names its target.
    init() {
        relay = nil
    }

    /// The delegate of a connection the node opens: relays to `relay`, and completes replies on `link`.
    init(relay: NodeDelegate, link: PeerLink? = nil) {
        self.relay = relay
        targets.withLock { $0.link = link }
    }

    func bind(_ events: any NodeEvents) { targets.withLock { $0.events = events } }
    /// Lets go of the node's events (it stopped), which breaks the cycle node → transport → delegate → node.
    func unbind() { targets.withLock { $0.events = nil } }
    func bind(_ link: PeerLink) { targets.withLock { $0.link = link } }

    private var events: (any NodeEvents)? {
        if let relay { return relay.events }
        return targets.withLock { $0.events }
    }

    func connectionEstablished(_ connection: any Connection) {
        events?.connectionEstablished(connection)
    }

    func received(_ frame: Wire.Frame, on connection: any Connection) {
        switch frame.kind {
        case .reply, .errorReply, .adminReply:
            if let link = targets.withLock({ $0.link }) { return link.complete(frame) }
        default: break
        }
        events?.received(frame, on: connection)
    }

    func connectionClosed(_ connection: any Connection, error: (any Error)?) {
        events?.connectionClosed(connection, error: error)
    }
}
