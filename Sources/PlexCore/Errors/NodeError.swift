/// The error a node's lifecycle or configuration fails with.
public struct NodeError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Wrapped: Sendable {
            case invalidConfiguration, dataDirectory, bindFailed, alreadyStarted, notRunning, duplicateActorType,
                removed
        }
        let wrapped: Wrapped

        /// A configuration value is missing or invalid; the message names the field.
        public static let invalidConfiguration = Code(wrapped: .invalidConfiguration)
        /// The data directory cannot be created, read or written.
        public static let dataDirectory = Code(wrapped: .dataDirectory)
        /// The listen address cannot be bound.
        public static let bindFailed = Code(wrapped: .bindFailed)
        /// The node was started twice.
        public static let alreadyStarted = Code(wrapped: .alreadyStarted)
        /// The node is not running.
        public static let notRunning = Code(wrapped: .notRunning)
        /// Two actor types were registered under one type name.
        public static let duplicateActorType = Code(wrapped: .duplicateActorType)
        /// An operator removed this node from its cluster while it ran; it stopped serving.
        public static let removed = Code(wrapped: .removed)

        public var description: String { String(describing: wrapped) }
    }

    /// What went wrong.
    public var code: Code
    /// A human-readable explanation.
    public var message: String
    /// The underlying error, if any.
    public var cause: (any Error & Sendable)?
    /// Where the error was made.
    public var location: String

    /// Creates a node error.
    public init(
        _ code: Code, _ message: String, cause: (any Error & Sendable)? = nil,
        file: StaticString = #fileID, line: UInt = #line
    ) {
        self.code = code
        self.message = message
        self.cause = cause
        self.location = "\(file):\(line)"
    }

    public var description: String {
        var text = "NodeError.\(code): \(message)"
        if let cause { text += " (cause: \(cause))" }
        return text
    }

    public static func == (lhs: NodeError, rhs: NodeError) -> Bool {
        lhs.code == rhs.code && lhs.message == rhs.message
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(code)
        hasher.combine(message)
    }
}
