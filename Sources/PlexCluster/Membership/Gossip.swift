internal import PlexCore

/// A gossip message: what one node knows of its cluster, sent to every member each heartbeat (it is the
/// heartbeat) and to a seed by a node that asks to join.
struct Gossip: Sendable, Hashable {
    /// One member as the sender knows it.
    struct Member: Sendable, Hashable {
        var nodeID: String
        var address: String
        var incarnation: Incarnation
        /// A ``MemberStatus`` raw value; one this version does not know (a newer member's) is skipped.
        var status: Int
        /// As last reported by that member itself.
        var activations: UInt32
    }

    /// An actor spawned on a given node and registered under a name.
    struct NamedActor: Sendable, Hashable {
        var name: String
        var actor: ActorID
        var nodeID: String
    }

    var fromNode: String = ""
    var fromIncarnation: Incarnation = 0
    /// The sender's cluster; `nil` while the sender is a new node waiting to join.
    var clusterID: String?
    var members: [Member] = []
    var registry: [NamedActor] = []
}
