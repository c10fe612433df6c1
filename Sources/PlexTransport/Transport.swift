public import PlexWire
internal import Synchronization

/// An established, authenticated connection to a peer.
///
/// `send` never blocks: frames are queued and written in batches (one flush per batch).
public protocol Connection: AnyObject, Sendable {
    /// Who the peer proved to be in the handshake.
    var peer: PeerIdentity { get }
    /// A number that tells this connection apart from others to the same peer.
    var connectionID: UInt64 { get }
    /// Queues a frame for the peer. Frames sent on a closed connection are dropped.
    ///
    /// A frame larger than the transport's maximum frame size is dropped and logged, never sent: the peer
    /// would close the whole connection over it. Use ``checkedSend(_:)`` to learn that a frame was not sent.
    func send(_ frame: Wire.Frame)
    /// Queues a frame for the peer, or says why it cannot be sent; the connection stays open either way.
    ///
    /// A frame that passes is queued exactly as ``send(_:)`` queues it; as there, it can still be lost if the
    /// connection closes before it is written.
    /// - Throws: ``TransportError`` with code `frameTooLarge` when the frame (header and body, length prefix
    ///   excluded) is larger than the transport's maximum frame size, or `connectionClosed` when the
    ///   connection has already closed. Nothing is sent in either case.
    func checkedSend(_ frame: Wire.Frame) throws(TransportError)
    /// The largest frame this connection sends, in bytes (header and body, length prefix excluded): the
    /// transport's configured maximum frame size.
    var maximumFrameSize: Int { get }
    /// Closes the connection; the delegate hears `connectionClosed` once.
    func close()
    /// The executor of the thread that reads this connection, if it has one: work started by a frame
    /// from this connection runs there.
    var taskExecutor: (any TaskExecutor)? { get }
    /// Whether this side opened the connection. The opener checks the peer's claimed identity itself.
    var isOutbound: Bool { get }
}

/// What a transport tells the node about its connections. Calls arrive on transport threads and must not block.
public protocol ConnectionDelegate: Sendable {
    /// A connection finished its handshake (either side).
    func connectionEstablished(_ connection: any Connection)
    /// A frame arrived on an established connection.
    func received(_ frame: Wire.Frame, on connection: any Connection)
    /// An established connection closed; `error` says why, if it was not a clean close.
    func connectionClosed(_ connection: any Connection, error: (any Error)?)
}

/// Carries frames between nodes: TCP in production, in-memory in tests. Both run the same handshake.
public protocol Transport: Sendable {
    /// Binds a listener on `address` (port 0 picks a free port) without accepting yet: connections are
    /// accepted only after ``startAccepting()``, so no peer can reach a node before it knows who it is.
    /// - Returns: The address actually bound.
    /// - Throws: ``TransportError`` with code `connectFailed` when the address cannot be bound.
    func bind(_ address: PeerAddress, delegate: any ConnectionDelegate) async throws -> PeerAddress
    /// Starts accepting connections on the bound listener.
    func startAccepting() async
    /// Opens a connection to `address` and completes the handshake.
    /// - Throws: ``TransportError`` with code `connectFailed`, `handshakeRefused`, `timeout` or `protocolViolation`.
    func connect(to address: PeerAddress, delegate: any ConnectionDelegate) async throws -> any Connection
    /// Sets who this end is, for handshakes from now on (the listen address is known only after `bind`).
    func setLocalIdentity(_ identity: PeerIdentity)
    /// Closes the listener and every connection.
    func shutdown() async
    /// Bytes and frames this transport has sent and received (every connection, handshakes included).
    var statistics: TransportStatistics { get }
    /// The executor of the I/O thread this transport's outgoing connections use, if any.
    var taskExecutor: (any TaskExecutor)? { get }
}

/// Counters of a transport's traffic.
public struct TransportStatistics: Sendable, Hashable {
    public var framesSent = 0
    public var framesReceived = 0
    /// Bytes on the wire, length prefixes included.
    public var bytesSent = 0
    public var bytesReceived = 0
    public init() {}
}

/// Thread-safe counters behind ``TransportStatistics``.
final class TrafficCounters: Sendable {
    let framesSent = Atomic<Int>(0)
    let framesReceived = Atomic<Int>(0)
    let bytesSent = Atomic<Int>(0)
    let bytesReceived = Atomic<Int>(0)

    func sent(frames: Int, bytes: Int) {
        framesSent.add(frames, ordering: .relaxed)
        bytesSent.add(bytes, ordering: .relaxed)
    }

    func received(bytes: Int) {
        framesReceived.add(1, ordering: .relaxed)
        bytesReceived.add(bytes, ordering: .relaxed)
    }

    var snapshot: TransportStatistics {
        var s = TransportStatistics()
        s.framesSent = framesSent.load(ordering: .relaxed)
        s.framesReceived = framesReceived.load(ordering: .relaxed)
        s.bytesSent = bytesSent.load(ordering: .relaxed)
        s.bytesReceived = bytesReceived.load(ordering: .relaxed)
        return s
    }
}
