/// What a handler knows about the message it handles and the node it runs on.
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
}
