/// Why a connection could not be made or was lost, or why one frame could not be sent.
public struct TransportError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Wrapped: Sendable {
            case handshakeRefused, connectFailed, connectionClosed, protocolViolation, timeout, frameTooLarge
            case limitExceeded, invalidConfiguration
        }
        let wrapped: Wrapped
        /// The peer speaks another protocol version, belongs to another cluster, or did not prove the cluster
        /// secret for this connection's identities and direction.
        public static let handshakeRefused = Code(wrapped: .handshakeRefused)
        /// The TCP connection could not be opened.
        public static let connectFailed = Code(wrapped: .connectFailed)
        /// The connection closed.
        public static let connectionClosed = Code(wrapped: .connectionClosed)
        /// The peer sent bytes that break the protocol (see ``FrameError``).
        public static let protocolViolation = Code(wrapped: .protocolViolation)
        /// The handshake did not finish in time.
        public static let timeout = Code(wrapped: .timeout)
        /// An outbound frame is larger than the maximum frame size. Only that frame fails; the connection stays.
        public static let frameTooLarge = Code(wrapped: .frameTooLarge)
        /// A connection went past a resource limit: it announced a frame larger than a connection may buffer
        /// before its handshake, or it arrived when the transport already had its maximum number of
        /// connections. That connection is closed.
        public static let limitExceeded = Code(wrapped: .limitExceeded)
        /// The transport's own settings are unusable: TLS files that cannot be read, do not parse, do not
        /// belong together, or hold an expired certificate.
        public static let invalidConfiguration = Code(wrapped: .invalidConfiguration)
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
