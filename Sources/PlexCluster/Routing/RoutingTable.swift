internal import PlexCore
internal import Synchronization

/// An immutable snapshot of everything a call needs to find its destination: the ring with reachability
/// and the link to each member, and the named (pinned) actors.
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

    /// Members in the ring (placement for pinned types).
    let ring: [Entry]
    /// Reachable members in the ring (placement for failover types).
    let reachableRing: [Entry]
    /// Named actors and their hosts.
    let pinned: [ActorID: NodeID]
    let selfID: NodeID

    init(membership: MembershipState, links: [NodeID: PeerLink]) {
        selfID = membership.selfID
        ring = membership.ring.map { member in
            Entry(
                node: member.node, hash: member.hash,
                reachable: member.node == membership.selfID || (membership.members[member.node]?.reachable ?? false),
                link: links[member.node])
        }
        reachableRing = ring.filter(\.reachable)
        pinned = membership.pinned
    }

    /// The owner of `id` with its entry (nil for a pinned node outside the ring), or `nil` for an empty ring.
    @inline(__always)
    func owner(of id: ActorID, placement: PlacementStrategy) -> (node: NodeID, entry: Entry?)? {
        if !pinned.isEmpty, let node = pinned[id] {
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

extension PlexNode {
    /// Mutates the membership view and, if that changed what routing sees, publishes a new routing table.
    ///
    /// When what the node keeps in its data directory changed (members, statuses, the cluster id), the ring
    /// file is written first, so nothing acts on a ring a crash could forget. Both happen under the membership
    /// lock (changes are rare; calls read only the routing table), so the view, the file and the routing table
    /// never disagree, and a slower publisher never replaces a newer table with an older one.
    func updateMembership<T>(_ body: (inout MembershipState) -> T) -> T {
        membership.withLock { state -> T in
            let (before, storedBefore) = (state.generation, state.storedVersion)
            let result = body(&state)
            if state.storedVersion != storedBefore, let ring = state.stored { saveRing(ring) }
            if state.generation != before {
                let table = RoutingTable(membership: state, links: links.withLock { $0 })
                routing.withLock { $0 = table }
            }
            return result
        }
    }

    /// Publishes a new routing table from the current membership and links (after either changed).
    func refreshRouting() {
        membership.withLock { state in
            let table = RoutingTable(membership: state, links: links.withLock { $0 })
            routing.withLock { $0 = table }
        }
    }

    /// Writes the ring file (called with the membership lock held, so writes never race).
    private func saveRing(_ ring: StoredRing) {
        do {
            try RingStore.save(ring, dataDirectory: configuration.dataDirectory)
        } catch {
            logger.error("cannot keep the ring in the data directory", metadata: ["error": "\(error)"])
        }
    }

}
