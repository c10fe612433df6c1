internal import Foundation
public import PlexTransport
internal import Synchronization

#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// A loopback TCP proxy for fault injection: it listens on its own port, forwards every connection to a target
/// address, and can cut and heal what passes through it, for all connections or for those of one dialer.
///
/// Point a node's peers at the proxy instead of at the node, and `cut()` is a network partition that the node
/// processes cannot tell from a real one. Two ways to cut:
/// - ``CutMode/drop``: open connections are reset; new ones are accepted and closed at once (a firewall that
///   rejects).
/// - ``CutMode/blackhole``: open connections stall (nothing is read or forwarded, so the sender's buffers fill
///   as on a dead link); new ones are accepted and held unconnected. A heal resumes them: no byte is lost.
///
/// To cut one direction of one link (A cannot reach B, B still reaches A), give the proxy an `identify`
/// function: it sees the first bytes a dialer sends and names the dialer (for PlexSpaces, the node id in the
/// handshake's hello). ``cut(from:_:)`` then cuts only that dialer's connections.
///
/// Plain sockets on threads: one thread accepts, two relay each connection. Call ``stop()`` when done; a
/// proxy that is not stopped keeps its threads and port.
public final class TCPProxy: Sendable {
    /// How a cut treats connections.
    public enum CutMode: Sendable, Hashable, CustomStringConvertible {
        /// Reset open connections, close new ones at once.
        case drop
        /// Stall open connections and hold new ones, losing nothing; a heal resumes them.
        case blackhole

        public var description: String { self == .drop ? "drop" : "blackhole" }
    }

    /// What an `identify` function made of a connection's first bytes.
    public enum Identification: Sendable, Hashable {
        /// Not enough bytes yet to tell.
        case needMoreBytes
        /// The dialer's name, as ``cut(from:_:)`` takes it.
        case dialer(String)
        /// Not a dialer this proxy can name: only cuts of every connection apply to it.
        case unknown
    }

    /// Why a proxy could not start.
    public struct Failure: Error, CustomStringConvertible {
        /// The system call that failed, and on what.
        public var operation: String
        /// The `errno` it left.
        public var code: Int32
        public var description: String { "\(operation): \(String(cString: strerror(code))) (errno \(code))" }
    }

    /// The address the proxy listens on: give this to the dialers.
    public let address: PeerAddress
    /// Where the proxy forwards to.
    public let target: PeerAddress
    /// The most bytes `identify` is shown; a dialer that has not been named by then is ``Identification/unknown``.
    public static let maximumIdentificationBytes = 64 * 1024

    let identify: (@Sendable ([UInt8]) -> Identification)?
    let state = Mutex(ProxyState())
    private let listener: Int32

    /// Starts a proxy that listens on `host:port` (port 0 picks a free one) and forwards to `target`.
    /// - Parameter identify: Names the dialer of a connection from the first bytes it sends, so one dialer's
    ///   connections can be cut alone. Without it, no byte is read before the target is connected.
    /// - Throws: ``Failure`` when the proxy cannot listen.
    public init(
        target: PeerAddress, host: String = "127.0.0.1", port: Int = 0,
        identify: (@Sendable ([UInt8]) -> Identification)? = nil
    ) throws {
        let (descriptor, bound) = try LoopbackSocket.makeListener(host: host, port: port)
        self.listener = descriptor
        self.address = PeerAddress(host: host, port: bound)
        self.target = target
        self.identify = identify
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    // MARK: Cutting and healing

    /// Cuts every connection, open and new, until ``heal()``.
    public func cut(_ mode: CutMode = .drop) {
        update { $0.all = mode }
    }

    /// Cuts the connections of `dialer` (as `identify` names it), open and new, until healed.
    public func cut(from dialer: String, _ mode: CutMode = .drop) {
        update { $0.dialers[dialer] = mode }
    }

    /// Heals every cut: held and stalled connections resume; new connections are forwarded again.
    public func heal() {
        update { $0 = CutRules() }
    }

    /// Heals the cut of `dialer` (a cut of every connection stays).
    public func heal(from dialer: String) {
        update { $0.dialers[dialer] = nil }
    }

    /// Whether any cut is in force.
    public var isCut: Bool { state.withLock { $0.rules.all != nil || !$0.rules.dialers.isEmpty } }

    /// Connections open now (accepted and not yet closed).
    public var openConnections: Int { state.withLock { $0.connections.count } }

    /// Connections accepted since the proxy started.
    public var acceptedConnections: Int { state.withLock { $0.accepted } }

    /// The dialers of the open connections that `identify` has named.
    public var openDialers: [String] { state.withLock { $0.connections.values.compactMap(\.dialer).sorted() } }

    /// Stops listening and resets every connection. The port is closed shortly after this returns.
    public func stop() {
        let open = state.withLock { state -> [ProxiedConnection] in
            state.stopped = true
            return Array(state.connections.values)
        }
        for connection in open { connection.drop() }
        LoopbackSocket.wake(listener)
    }

    /// The cut that applies to a connection of `dialer` now (`nil`: none).
    func mode(for dialer: String?) -> CutMode? {
        state.withLock { $0.stopped ? .drop : $0.rules.mode(for: dialer) }
    }

    private func update(_ change: (inout CutRules) -> Void) {
        let affected = state.withLock { state -> [(ProxiedConnection, CutMode?)] in
            change(&state.rules)
            let rules = state.rules
            return state.connections.values.map { ($0, rules.mode(for: $0.dialer)) }
        }
        for (connection, mode) in affected { connection.apply(mode) }
    }

    // MARK: Accepting

    private func acceptLoop() {
        defer { close(listener) }
        while !state.withLock({ $0.stopped }) {
            guard LoopbackSocket.waitReadable(listener, milliseconds: 50) else { continue }
            guard let descriptor = LoopbackSocket.acceptConnection(listener) else { continue }
            let connection = state.withLock { state -> ProxiedConnection? in
                guard !state.stopped else { return nil }
                state.accepted += 1
                state.nextID += 1
                let connection = ProxiedConnection(id: state.nextID, client: descriptor)
                state.connections[connection.id] = connection
                return connection
            }
            guard let connection else {
                LoopbackSocket.reset(descriptor)
                close(descriptor)
                continue
            }
            connection.apply(mode(for: nil))
            let thread = Thread { [self] in
                connection.run(proxy: self) { [self] in
                    _ = state.withLock { $0.connections.removeValue(forKey: connection.id) }
                }
            }
            thread.start()
        }
    }
}

/// What is cut: every connection, or those of some dialers.
struct CutRules: Sendable {
    var all: TCPProxy.CutMode?
    var dialers: [String: TCPProxy.CutMode] = [:]

    /// The cut that applies to a connection of `dialer`; a drop wins over a blackhole.
    func mode(for dialer: String?) -> TCPProxy.CutMode? {
        let own = dialer.flatMap { dialers[$0] }
        if all == .drop || own == .drop { return .drop }
        return all ?? own
    }
}

/// A proxy's mutable state.
struct ProxyState: Sendable {
    var rules = CutRules()
    var connections: [Int: ProxiedConnection] = [:]
    var nextID = 0
    var accepted = 0
    var stopped = false
}
