internal import PlexCore

/// What an operator's tool (or another node, for a removal vote) asks a node in an `adminRequest` frame.
enum AdminRequest: Sendable, Equatable {
    /// `plex cluster status`.
    case status
    /// `plex node stop`: drain (hand off durable actors), answer, then stop.
    case leave
    /// `plex cluster remove`: take a dead member out of the ring for good.
    case remove(NodeID, force: Bool)
}

/// A node's answer to an ``AdminRequest``: the cluster as it sees it, and for `leave` and `remove` what was done.
struct AdminReply: Sendable {
    /// A member as the answering node sees it.
    struct MemberView: Sendable {
        var member: Gossip.Member
        /// `up`, `unreachable`, `leaving`, `left` or `removed`, as seen by the answering node.
        var reachability: String
    }

    var nodeID: String
    var clusterName: String
    /// Empty while the answering node has not joined a cluster.
    var clusterID: String
    /// `joined`, or `joining: …` while the answering node waits for a seed.
    var membership: String
    var members: [MemberView]
    var registry: [Gossip.NamedActor]
    /// For `leave` and `remove`: what was done, in words for the operator.
    var outcome: String = ""
    /// For `leave`: durable actors handed off.
    var moved: Int = 0
    /// For `leave`: durable actors that stayed in the node's journal.
    var notMoved: Int = 0
    /// What the answering node's operator should act on (its TLS certificate expiring soon).
    var warnings: [String] = []

    /// The answer as ``PlexClient/status(timeout:)`` reports it.
    var status: ClusterStatus {
        ClusterStatus(
            answeredBy: nodeID, clusterName: clusterName, clusterID: clusterID, membership: membership,
            members: members.map {
                MemberStatusView(
                    nodeID: $0.member.nodeID, address: $0.member.address, incarnation: $0.member.incarnation,
                    state: $0.reachability, activations: $0.member.activations)
            },
            named: Dictionary(
                registry.map { ($0.name, "\($0.actor)@\($0.nodeID)") }, uniquingKeysWith: { a, _ in a }),
            warnings: warnings)
    }
}
