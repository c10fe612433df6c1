public import PlexCore

/// Rendezvous (highest random weight) placement: every node computes the same owner from the ring alone.
///
/// The score of node `n` for actor `a` is `finalize(hash(n) ^ hash(a))`; the highest score wins. Adding or
/// removing a node moves only the actors that node wins or held (about 1/N of them).
public enum Placement {
    /// The stable hash of an actor id.
    @inlinable
    public static func hash(_ id: ActorID) -> UInt64 {
        var state = StableHash.seed
        StableHash.combine(id.typeName, into: &state)
        StableHash.combine(id.key, into: &state)
        return state
    }

    /// The stable hash of a node id.
    @inlinable
    public static func hash(_ node: NodeID) -> UInt64 {
        StableHash.hash(node.rawValue)
    }

    /// The owner of `actorHash` among `candidates` (node id with its precomputed hash), or `nil` if empty.
    @inlinable
    public static func owner(of actorHash: UInt64, among candidates: [(node: NodeID, hash: UInt64)]) -> NodeID? {
        var best: NodeID?
        var bestScore: UInt64 = 0
        for candidate in candidates {
            let score = StableHash.finalize(candidate.hash ^ actorHash)
            if best == nil || score > bestScore || (score == bestScore && candidate.node < best!) {
                best = candidate.node
                bestScore = score
            }
        }
        return best
    }

    /// The owner of `id` among `nodes`.
    public static func owner(of id: ActorID, among nodes: [NodeID]) -> NodeID? {
        owner(of: hash(id), among: nodes.map { ($0, hash($0)) })
    }
}
