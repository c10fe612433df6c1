#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// Free TCP ports on loopback, for processes that must be told their address before they start (a cluster
/// whose nodes all list the same seeds).
public enum LoopbackPort {
    /// A port that nothing listens on now: the system picks it for a listener that is closed at once.
    /// Another process could take it before it is used; the window is short, and a node that cannot bind it
    /// says so and exits.
    /// - Throws: ``TCPProxy/Failure`` when no socket can be bound.
    public static func unused(host: String = "127.0.0.1") throws -> Int {
        let (descriptor, port) = try LoopbackSocket.makeListener(host: host, port: 0)
        close(descriptor)
        return port
    }
}
