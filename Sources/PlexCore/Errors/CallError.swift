/// The error a call to an actor fails with.
///
/// Every failure of ``ActorRef/ask(_:timeout:)`` and ``ActorRef/tell(_:)`` is a `CallError`. Only
/// ``code`` and ``message`` travel over the wire; ``remoteCode`` carries the code an actor's own error
/// chose (see ``ActorFailure``).
public struct CallError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong, as a closed set that can still grow without breaking callers.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        enum Wrapped: UInt16, Sendable {
            case timeout = 1
            case nodeUnavailable = 2
            case unknownActorType = 3
            case remoteFailure = 4
            case overloaded = 5
            case invalidRequest = 6
            case cancelled = 7
            case codecFailure = 8
            case shuttingDown = 9
            case storageFailure = 10
            case permissionDenied = 11
        }
        let wrapped: Wrapped

        /// The deadline passed before a reply arrived. The call may or may not have run.
        public static let timeout = Code(wrapped: .timeout)
        /// The node that owns the actor cannot be reached (or is not known). The call did not run.
        public static let nodeUnavailable = Code(wrapped: .nodeUnavailable)
        /// The node that owns the actor has no type registered under the actor's type name.
        public static let unknownActorType = Code(wrapped: .unknownActorType)
        /// The actor's handler threw; ``CallError/remoteCode`` and the message say what it threw.
        public static let remoteFailure = Code(wrapped: .remoteFailure)
        /// Too many calls are in flight to the target node (no window slot before the deadline), or the
        /// actor's mailbox is full (the message did not run); back off and retry.
        public static let overloaded = Code(wrapped: .overloaded)
        /// The request is malformed (bad actor id, payload that does not decode).
        public static let invalidRequest = Code(wrapped: .invalidRequest)
        /// The calling task was cancelled, or the handler failed after it was. The owner was told (a `cancel`
        /// frame): a call still waiting for its turn never runs, and a running handler is cancelled
        /// cooperatively (it sees task cancellation). A cancelled message is not journaled, so a retry with
        /// the same idempotency key runs it.
        public static let cancelled = Code(wrapped: .cancelled)
        /// The request or response could not be encoded or decoded.
        public static let codecFailure = Code(wrapped: .codecFailure)
        /// The node is shutting down and takes no new calls.
        public static let shuttingDown = Code(wrapped: .shuttingDown)
        /// The owner could not make the call durable (journal error, full disk): its effect was not kept.
        public static let storageFailure = Code(wrapped: .storageFailure)
        /// The caller's credentials do not allow the request (a client whose certificate gives it the `caller`
        /// role asked to stop or remove a node). Nothing was done.
        public static let permissionDenied = Code(wrapped: .permissionDenied)

        /// The code's number on the wire.
        public var rawValue: UInt16 { wrapped.rawValue }

        /// The code for a wire number; unknown numbers map to ``remoteFailure``.
        public init(rawValue: UInt16) {
            self.wrapped = Wrapped(rawValue: rawValue) ?? .remoteFailure
        }

        init(wrapped: Wrapped) { self.wrapped = wrapped }

        public var description: String { String(describing: wrapped) }
    }

    /// What went wrong.
    public var code: Code
    /// A human-readable explanation.
    public var message: String
    /// For ``Code/remoteFailure``: the code the actor's error chose (``ActorFailure/code``), if any.
    public var remoteCode: String?

    /// Creates a call error.
    public init(_ code: Code, _ message: String, remoteCode: String? = nil) {
        self.code = code
        self.message = message
        self.remoteCode = remoteCode
    }

    public var description: String {
        if let remoteCode { return "CallError.\(code)(\(remoteCode)): \(message)" }
        return "CallError.\(code): \(message)"
    }
}

/// An error an actor throws to give callers a stable, machine-readable code.
///
/// Any error a handler throws reaches the caller as ``CallError/Code/remoteFailure``; with `ActorFailure`
/// the caller also sees ``code`` as ``CallError/remoteCode``.
public struct ActorFailure: Error, Hashable, Sendable {
    /// A short code such as `"insufficient-funds"`.
    public var code: String
    /// A human-readable explanation.
    public var message: String

    /// Creates an actor failure.
    public init(code: String, message: String) {
        self.code = code
        self.message = message
    }
}
