public import FoundationEssentials

/// What a handler knows about the message it handles and the node it runs on, and its deterministic tools.
public struct ActorContext: Sendable {
    /// The actor's identity.
    public let id: ActorID
    /// The node hosting this activation.
    public let nodeID: NodeID
    /// The call being handled, or `nil` in the activation and deactivation hooks.
    public let callID: CallID?
    /// The caller's idempotency key, if it gave one.
    public let idempotencyKey: String?
    /// Whether the handler is re-running a journaled message to rebuild a durable actor's state. Its reply
    /// goes nowhere; effects outside the actor's state must not be repeated.
    public let isReplaying: Bool
    let router: any ActorCallRouter
    /// Where a durable actor's side effects are recorded (or replayed from); `nil` for ephemeral actors.
    package var effects: EffectLog?

    /// Creates a context; the node runtime does this.
    public init(
        id: ActorID, nodeID: NodeID, callID: CallID?, idempotencyKey: String? = nil, isReplaying: Bool = false,
        router: any ActorCallRouter
    ) {
        self.idempotencyKey = idempotencyKey
        self.id = id
        self.nodeID = nodeID
        self.callID = callID
        self.isReplaying = isReplaying
        self.router = router
    }

    /// A reference to another actor (or to this one).
    public func actor<B: VirtualActor>(_ type: B.Type, key: String) -> ActorRef<B> {
        ActorRef<B>(key: key, router: router)
    }

    /// Runs a side effect once per durably processed message.
    ///
    /// In a durable actor the result is journaled with the message; when the message is replayed to rebuild
    /// the state, the recorded result is returned and `body` does not run. (If the node crashes before the
    /// message is journaled, the message never happened: its caller gets no reply, and a retry runs the
    /// effect again.) In an ephemeral actor `body` simply runs.
    ///
    /// - Parameters:
    ///   - name: Names the effect; replay checks that the code asks for the same effects in the same order.
    ///   - body: The effect; its result must be `Codable`.
    /// - Throws: What `body` throws, or ``CallError`` `storageFailure` when replay finds different effects.
    public func run<T: Codable & Sendable>(_ name: String, _ body: () async throws -> T) async throws -> T {
        guard let effects else { return try await body() }
        return try await effects.run(name, body)
    }

    /// The current time, journaled in durable actors so replay sees the same value.
    public func now() async throws -> Date {
        try await run("plex.now") { Date() }
    }

    /// A random integer in `range`, journaled in durable actors so replay sees the same value.
    public func random(in range: ClosedRange<Int>) async throws -> Int {
        try await run("plex.random") { Int.random(in: range) }
    }
}
