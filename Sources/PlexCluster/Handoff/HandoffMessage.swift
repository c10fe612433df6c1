internal import PlexCore
internal import PlexJournal

/// What one node asks another in a `handoff` frame.
enum HandoffRequest: Sendable {
    /// "Store this actor; you own it now" (the previous owner pushes).
    case transfer(ActorTransfer)
    /// "Give me this actor if you hold it" (the new owner asks).
    case pull(ActorID)
    /// "I have pushed you everything of mine you own in this ring" (identified by ``HandoffCoordinator/ringHash()``).
    case done(ring: UInt64)
}

/// The answer to a ``HandoffRequest``.
enum HandoffReply: Sendable {
    /// To a transfer: stored (`true`), or the receiver had it already (`false`).
    case stored(Bool)
    /// To a pull: the state, now handed to the puller.
    case transfer(ActorTransfer)
    /// To a pull: handed to that node earlier; ask it.
    case movedTo(NodeID)
    /// To a pull: this node has nothing of the actor.
    case notHeld
    /// To `done`.
    case acknowledged
}
