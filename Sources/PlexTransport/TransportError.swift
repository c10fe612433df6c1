/// Why a connection could not be made or was lost.
public struct TransportError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Wrapped: Sendable { case handshakeRefused, connectFailed, connectionClosed, protocolViolation, timeout }
        let wrapped: Wrapped
        /// The peer speaks another protocol version, belongs to another cluster, or proved a different secret.
        public static let handshakeRefused = Code(wrapped: .handshakeRefused)
        /// The TCP connection could not be opened.
        public static let connectFailed = Code(wrapped: .connectFailed)
        /// The connection closed.
        public static let connectionClosed = Code(wrapped: .connectionClosed)
        /// The peer sent bytes that break the protocol (see ``FrameError``).
        public static let protocolViolation = Code(wrapped: .protocolViolation)
        /// The handshake did not finish in time.
        public static let timeout = Code(wrapped: .timeout)
        public var description: String { String(describing: wrapped) }
    }

    /// What went wrong.
    public var code: Code
    /// Details.
    public var message: String

    /// Creates a transport error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "TransportError.\(code): \(message)" }
}
