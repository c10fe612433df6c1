public import Logging

/// Options for one call.
public struct CallOptions: Sendable, Hashable {
    /// How long the caller waits for a reply; `nil` uses the node's default (``CallOptions/defaultTimeout``).
    public var timeout: Duration?

    /// Makes retries safe: a call with a key the actor already processed returns the stored reply without
    /// running again (for durable actors across restarts, within the node's idempotency retention).
    public var idempotencyKey: String?

    /// The timeout used when a call names none: 5 seconds.
    public static let defaultTimeout: Duration = .seconds(5)

    /// Creates call options.
    public init(timeout: Duration? = nil, idempotencyKey: String? = nil) {
        self.timeout = timeout
        self.idempotencyKey = idempotencyKey
    }
}

/// What an ``ActorRef`` sends its calls through: the node runtime.
///
/// Users do not implement this; a node (`PlexNode`) provides it.
public protocol ActorCallRouter: Sendable {
    /// Sends a request to an actor and waits for its reply.
    func ask<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request, options: CallOptions)
        async throws -> A.Response
    /// Sends a request to an actor without waiting for it to run.
    func tell<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request) async throws
    /// The node's logger, for ``ActorContext/logger``; `nil` where there is no node (an offline replay).
    var logger: Logger? { get }
}

extension ActorCallRouter {
    /// No logger: ``ActorContext/logger`` is silent.
    public var logger: Logger? { nil }
}

/// A location-transparent reference to a virtual actor: a plain value, valid on every node.
///
/// A reference does not hold the actor alive and costs nothing to make or copy; the cluster finds (or
/// activates) the actor when a message is sent.
public struct ActorRef<A: VirtualActor>: Sendable, Hashable, CustomStringConvertible {
    /// The actor's identity.
    public let id: ActorID
    let router: any ActorCallRouter

    /// Creates a reference that sends through `router`.
    public init(key: String, router: any ActorCallRouter) {
        self.id = ActorID(typeName: A.typeName, key: key)
        self.router = router
    }

    /// Sends `request` and waits for the reply.
    ///
    /// - Parameters:
    ///   - request: The message.
    ///   - timeout: How long to wait for the reply; `nil` uses ``CallOptions/defaultTimeout``.
    ///   - idempotencyKey: A key that makes retrying this call safe: if the actor already processed a call
    ///     with this key, the stored reply is returned and the handler does not run again.
    /// - Returns: The actor's reply.
    /// - Throws: ``CallError`` with code `timeout`, `nodeUnavailable`, `unknownActorType`, `remoteFailure`,
    ///   `overloaded`, `invalidRequest`, `codecFailure`, `cancelled`, `shuttingDown` or `storageFailure`.
    public func ask(_ request: A.Request, timeout: Duration? = nil, idempotencyKey: String? = nil) async throws
        -> A.Response
    {
        try await router.ask(
            A.self, id, request, options: CallOptions(timeout: timeout, idempotencyKey: idempotencyKey))
    }

    /// Sends `request` without waiting for the actor to handle it.
    ///
    /// Returns once the message is handed to the owning node's connection (or enqueued locally). Delivery
    /// is at most once; a reply or error from the handler is dropped. A tell takes a slot in the window of
    /// calls in flight to the owner until the owner has queued it, so a flood of tells waits for slots; the
    /// owner drops one that finds the actor's mailbox full (it logs that).
    ///
    /// - Throws: ``CallError`` with code `nodeUnavailable`, `overloaded` (no window slot in time, or a local
    ///   actor's mailbox is full), `invalidRequest` (larger than the maximum frame size), `codecFailure` or
    ///   `shuttingDown`.
    public func tell(_ request: A.Request) async throws {
        try await router.tell(A.self, id, request)
    }

    public var description: String { "ActorRef(\(id))" }

    public static func == (lhs: ActorRef, rhs: ActorRef) -> Bool { lhs.id == rhs.id }
    public func hash(into hasher: inout Hasher) { hasher.combine(id) }
}
