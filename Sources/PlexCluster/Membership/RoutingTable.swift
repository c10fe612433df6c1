internal import PlexCore
internal import Synchronization

/// An immutable snapshot of everything a call needs to find its destination: the ring with reachability
/// and the link to each member, and the named actors (which live where they were spawned).
///
/// Rebuilt when membership or links change (rare), read on every call with one lock and no dictionary
/// lookups on the common path.
final class RoutingTable: Sendable {
    struct Entry: Sendable {
        let node: NodeID
        let hash: UInt64
        let reachable: Bool
        let link: PeerLink?
    }

    /// Members in the ring (placement for types with ``PlacementStrategy/pinned`` placement).
    let ring: [Entry]
    /// Reachable members in the ring (placement for types with ``PlacementStrategy/failover`` placement).
    let reachableRing: [Entry]
    /// Named actors and the nodes they were spawned on.
    let named: [ActorID: NodeID]
    let selfID: NodeID
    /// Whether this node knows its cluster's ring (it founded or joined a cluster); until then it answers no
    /// call, since it cannot know who owns anything.
    let joined: Bool

    init(membership: MembershipState, links: [NodeID: PeerLink]) {
        selfID = membership.selfID
        joined = membership.clusterID != nil
        ring = membership.ring.map { member in
            Entry(
                node: member.node, hash: member.hash,
                reachable: member.node == membership.selfID || (membership.members[member.node]?.reachable ?? false),
                link: links[member.node])
        }
        reachableRing = ring.filter(\.reachable)
        named = membership.named
    }

    /// The owner of `id` with its entry (nil for a named actor's node outside the ring), or `nil` for an empty
    /// ring.
    @inline(__always)
    func owner(of id: ActorID, placement: PlacementStrategy) -> (node: NodeID, entry: Entry?)? {
        if !named.isEmpty, let node = named[id] {
            return (node, ring.first { $0.node == node })
        }
        let candidates = placement == .pinned ? ring : reachableRing
        let actorHash = Placement.hash(id)
        var best = -1
        var bestScore: UInt64 = 0
        var index = 0
        while index < candidates.count {
            let candidate = candidates[index]
            // A failover type also skips members whose connection is down right now (a crash is seen at
            // once as a closed connection, before the failure detector's verdict).
            if placement == .failover && candidate.node != selfID && !(candidate.link?.isConnected ?? false) {
                index += 1
                continue
            }
            let score = StableHash.finalize(candidate.hash ^ actorHash)
            if best < 0 || score > bestScore || (score == bestScore && candidate.node < candidates[best].node) {
                best = index
                bestScore = score
            }
            index += 1
        }
        guard best >= 0 else { return nil }
        return (candidates[best].node, candidates[best])
    }
}
