/// Why a byte stream is not a valid sequence of frames. Any of these closes the connection.
public struct FrameError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What is wrong with the frame.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Wrapped: Sendable { case tooLarge, tooShort, versionMismatch, unknownKind, malformedBody, unexpectedKind }
        let wrapped: Wrapped
        /// The length prefix exceeds the configured maximum.
        public static let tooLarge = Code(wrapped: .tooLarge)
        /// The length prefix is smaller than the fixed header.
        public static let tooShort = Code(wrapped: .tooShort)
        /// The version byte is not ``Wire/protocolVersion``.
        public static let versionMismatch = Code(wrapped: .versionMismatch)
        /// The kind byte names no ``Wire/FrameKind``.
        public static let unknownKind = Code(wrapped: .unknownKind)
        /// The body does not decode as its kind requires.
        public static let malformedBody = Code(wrapped: .malformedBody)
        /// A valid frame arrived where the protocol does not allow it (a call before the handshake).
        public static let unexpectedKind = Code(wrapped: .unexpectedKind)
        public var description: String { String(describing: wrapped) }
    }

    /// What is wrong.
    public var code: Code
    /// Details, with the offending numbers.
    public var message: String

    /// Creates a frame error.
    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { "FrameError.\(code): \(message)" }
}
