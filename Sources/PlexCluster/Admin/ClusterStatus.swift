/// One member as a node reports it to ``PlexClient/status(timeout:)``.
public struct MemberStatusView: Codable, Sendable, Hashable {
    public var nodeID: String
    public var address: String
    public var incarnation: UInt64
    /// `up`, `unreachable`, `leaving`, `left` or `removed`, as seen by the answering node.
    public var state: String
    public var activations: UInt32
}

/// The cluster as one node sees it.
public struct ClusterStatus: Codable, Sendable, Hashable {
    /// The node that answered.
    public var answeredBy: String
    public var clusterName: String
    /// The id of the answering node's cluster; empty while it waits to join one.
    public var clusterID: String
    /// `joined`, or `joining: …` while the answering node waits for a seed.
    public var membership: String
    public var members: [MemberStatusView]
    /// Named actors: name → `type/key@node`.
    public var named: [String: String]
    /// What the answering node's operator should act on, such as its TLS certificate expiring within 14 days.
    public var warnings: [String]
}
