internal import Foundation
internal import Synchronization

#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// One connection through a ``TCPProxy``: the dialer's socket, and once the cuts allow, the target's.
///
/// Its descriptors are closed only under its lock, after both relay threads ended, so a late `drop` never
/// shuts a reused descriptor.
final class ProxiedConnection: Sendable {
    struct Relay: Sendable {
        var dialer: String?
        var upstream: Int32?
        /// A blackhole: the relay threads read nothing until it ends.
        var paused = false
        /// Reset (by a cut, a failure or the proxy's stop): everything ends.
        var dropped = false
        /// The descriptors are closed.
        var closed = false
        /// Relay threads still running.
        var relays = 0
    }

    let id: Int
    let client: Int32
    private let state = Mutex(Relay())

    init(id: Int, client: Int32) {
        self.id = id
        self.client = client
    }

    /// The dialer's name, once `identify` gave it.
    var dialer: String? { state.withLock { $0.dialer } }

    /// Applies the cut now in force for this connection (`nil`: none).
    func apply(_ mode: TCPProxy.CutMode?) {
        switch mode {
        case .drop: drop()
        case .blackhole: state.withLock { $0.paused = true }
        case nil: state.withLock { $0.paused = false }
        }
    }

    /// Resets both sockets; the relay threads end.
    func drop() {
        state.withLock { relay in
            guard !relay.dropped, !relay.closed else { return }
            relay.dropped = true
            LoopbackSocket.reset(client)
            if let upstream = relay.upstream { LoopbackSocket.reset(upstream) }
        }
    }

    private var isDropped: Bool { state.withLock { $0.dropped } }

    /// Names the dialer, waits for the cuts to allow the connection, connects the target and relays both
    /// ways; calls `finished` once the connection is closed.
    func run(proxy: TCPProxy, finished: @escaping @Sendable () -> Void) {
        guard let (dialer, prefix) = introduce(proxy: proxy), admit(dialer, proxy: proxy),
            let upstream = try? LoopbackSocket.dial(proxy.target)
        else {
            drop()
            closeAll()
            finished()
            return
        }
        let attached = state.withLock { relay -> Bool in
            guard !relay.dropped else { return false }
            relay.upstream = upstream
            relay.relays = 2
            return true
        }
        guard attached, LoopbackSocket.sendAll(upstream, prefix[...]) else {
            if !attached { close(upstream) }
            drop()
            closeAll()
            finished()
            return
        }
        let other = Thread { [self] in
            relay(from: upstream, to: client)
            relayEnded(finished)
        }
        other.start()
        relay(from: client, to: upstream)
        relayEnded(finished)
    }

    /// Reads the dialer's first bytes until `identify` names it (without `identify`, reads nothing).
    /// - Returns: The dialer (if named) and the bytes read; `nil` if the connection ended first.
    private func introduce(proxy: TCPProxy) -> (String?, [UInt8])? {
        guard let identify = proxy.identify else { return (nil, []) }
        var prefix: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var dialer: String?
        reading: while !isDropped {
            if !prefix.isEmpty {
                switch identify(prefix) {
                case .needMoreBytes: break
                case .dialer(let name):
                    dialer = name
                    break reading
                case .unknown: break reading
                }
            }
            if prefix.count >= TCPProxy.maximumIdentificationBytes { break }
            guard LoopbackSocket.waitReadable(client, milliseconds: 50) else { continue }
            let count = LoopbackSocket.receive(client, into: &buffer)
            if count > 0 {
                prefix += buffer[0..<count]
            } else if count == 0 || !LoopbackSocket.isTransientError {
                return nil
            }
        }
        guard !isDropped else { return nil }
        state.withLock { $0.dialer = dialer }
        return (dialer, prefix)
    }

    /// Holds the connection while a blackhole covers it; `false` if a drop does (or the proxy stopped).
    private func admit(_ dialer: String?, proxy: TCPProxy) -> Bool {
        while !isDropped {
            switch proxy.mode(for: dialer) {
            case .drop: return false
            case .blackhole: LoopbackSocket.pause(milliseconds: 20)
            case nil: return true
            }
        }
        return false
    }

    /// Copies bytes from `source` to `destination` until the end of the stream (passed on as a half close),
    /// an error or a drop; reads nothing while paused.
    private func relay(from source: Int32, to destination: Int32) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let (paused, dropped) = state.withLock { ($0.paused, $0.dropped) }
            if dropped { return }
            if paused {
                LoopbackSocket.pause(milliseconds: 20)
                continue
            }
            guard LoopbackSocket.waitReadable(source, milliseconds: 50) else { continue }
            // A cut may have come while this thread waited: bytes that arrived after it stay unread.
            guard !state.withLock({ $0.paused || $0.dropped }) else { continue }
            let count = LoopbackSocket.receive(source, into: &buffer)
            if count > 0 {
                guard LoopbackSocket.sendAll(destination, buffer[0..<count]) else { return drop() }
            } else if count == 0 {
                state.withLock { relay in
                    if !relay.closed { LoopbackSocket.closeWriting(destination) }
                }
                return
            } else if !LoopbackSocket.isTransientError {
                return drop()
            }
        }
    }

    private func relayEnded(_ finished: @Sendable () -> Void) {
        let last = state.withLock { relay -> Bool in
            relay.relays -= 1
            return relay.relays == 0
        }
        guard last else { return }
        closeAll()
        finished()
    }

    private func closeAll() {
        state.withLock { relay in
            guard !relay.closed else { return }
            relay.closed = true
            close(client)
            if let upstream = relay.upstream { close(upstream) }
        }
    }
}
