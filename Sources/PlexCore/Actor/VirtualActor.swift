/// The state of an actor that starts from a default value.
public protocol ActorState: Codable, Sendable {
    /// The state of a new actor.
    init()
}

/// The state of an actor that keeps none.
public struct NoState: ActorState, Hashable {
    public init() {}
}

/// Where the cluster may place an actor type's instances.
public enum PlacementStrategy: Sendable, Hashable {
    /// The owner is the rendezvous winner over every member of the ring, reachable or not. When the owner
    /// is unreachable, calls fail fast with ``CallError/Code/nodeUnavailable``; the actor is never activated
    /// elsewhere. The default, because an actor's durable state lives in its owner's journal.
    case pinned
    /// The owner is the rendezvous winner over the reachable members only, so the actor re-homes to the next
    /// live node at once. For stateless or ephemeral actors.
    case failover
}

/// Whether an actor type's state survives its node.
public enum Durability: Sendable, Hashable {
    /// State lives in memory only and starts afresh after a restart.
    case ephemeral
    /// Every processed message is journaled in the owner's journal before the reply is released; an
    /// activation recovers from its latest checkpoint plus the messages after it. A checkpoint is written
    /// every `checkpointEvery` messages.
    case durable(checkpointEvery: Int)
}

/// A virtual actor: an addressable unit of state and behaviour that exists conceptually forever.
///
/// The cluster activates an instance on its owning node when the first message for its ``ActorID``
/// arrives, runs one message at a time (a handler that awaits is never interleaved with another message
/// for the same actor), and deactivates it when idle.
///
/// ```swift
/// struct Counter: VirtualActor {
///     static let typeName = "counter"
///     struct State: ActorState { var count = 0 }
///     enum Request: Codable, Sendable { case increment, get }
///
///     func handle(_ request: Request, state: inout State, context: ActorContext) async throws -> Int {
///         if case .increment = request { state.count += 1 }
///         return state.count
///     }
/// }
/// ```
///
/// A handler that throws makes the caller receive ``CallError/Code/remoteFailure``; the activation keeps
/// running, and changes the handler made to the state before throwing are kept (as in Orleans; a durable
/// actor journals the failed message, so replay reproduces them).
public protocol VirtualActor: Sendable {
    /// The messages the actor accepts.
    associatedtype Request: Codable & Sendable
    /// What a handled message replies with.
    associatedtype Response: Codable & Sendable
    /// The actor's state, handed to each handler as `inout`.
    associatedtype State: Codable & Sendable = NoState

    /// The stable name of the type; part of every ``ActorID`` and of the wire format. Never change it.
    static var typeName: String { get }

    /// Where the cluster places instances of this type. Defaults to ``PlacementStrategy/pinned``.
    static var placement: PlacementStrategy { get }

    /// Whether instances survive their node. Defaults to ``Durability/ephemeral``.
    static var durability: Durability { get }

    /// Creates the behaviour object of an activation.
    init()

    /// The state of an actor that has never run.
    static func initialState(for id: ActorID) -> State

    /// Called when an activation starts, before its first message.
    func activate(state: inout State, context: ActorContext) async throws

    /// Called when an activation ends (idle, evicted, or the node stops), after its last message.
    func deactivate(state: inout State, context: ActorContext) async

    /// Whether `request` only reads the state: a durable actor then runs it without journaling it, on a copy
    /// of the state (changes the handler makes are dropped), and releases the reply once the actor's earlier
    /// messages are durable (so a reply never shows a state a crash could still lose). Its handler must not
    /// use ``ActorContext/run(_:_:)`` or reminders. Defaults to `false` for every request.
    static func isReadOnly(_ request: Request) -> Bool

    /// Handles one message.
    ///
    /// - Parameters:
    ///   - request: The message.
    ///   - state: The actor's state; changes are kept, also when the handler throws.
    ///   - context: The call's context: identity, call id, and references to other actors.
    /// - Returns: The reply.
    func handle(_ request: Request, state: inout State, context: ActorContext) async throws -> Response
}

extension VirtualActor {
    public static var placement: PlacementStrategy { .pinned }
    public static var durability: Durability { .ephemeral }
    public static func isReadOnly(_ request: Request) -> Bool { false }
    public func activate(state: inout State, context: ActorContext) async throws {}
    public func deactivate(state: inout State, context: ActorContext) async {}
}

extension VirtualActor where State: ActorState {
    public static func initialState(for id: ActorID) -> State { State() }
}
