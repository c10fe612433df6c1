public import PlexCore
internal import PlexWire

/// A member's lifecycle status, as gossiped. Ordered: a later status wins at equal incarnation.
public enum MemberStatus: Int, Sendable, Comparable, CustomStringConvertible {
    /// In the ring.
    case up = 0
    /// Announced a graceful leave; out of the ring.
    case leaving = 1
    /// Gone after a graceful leave (until it returns with a higher incarnation).
    case left = 2
    /// Removed by an operator (`plex cluster remove`): gone for good, at every incarnation. A later start of
    /// the node on its data directory is refused and stops, so copies it kept from before the removal never
    /// serve again; it can join only as a new node (a new id and data directory).
    case removed = 3

    public static func < (a: MemberStatus, b: MemberStatus) -> Bool { a.rawValue < b.rawValue }
    public var description: String { ["up", "leaving", "left", "removed"][rawValue] }

    init?(named name: String) {
        switch name {
        case "up": self = .up
        case "leaving": self = .leaving
        case "left": self = .left
        case "removed": self = .removed
        default: return nil
        }
    }
}

/// One member as this node knows it.
public struct MemberRecord: Sendable, Hashable {
    /// The member's id.
    public var nodeID: NodeID
    /// Where it accepts connections.
    public var address: String
    /// Its incarnation.
    public var incarnation: Incarnation
    /// Its gossiped status.
    public var status: MemberStatus
    /// How many activations it last reported.
    public var activations: UInt32
    /// Whether this node hears from it (local judgement of the failure detector).
    public var reachable: Bool
    /// When this node last heard from it (nanoseconds on the node's monotonic clock).
    var lastHeard: UInt64
}

/// The membership view as a value: merge gossip, record heartbeats, judge reachability; each returns what
/// changed, and the node carries that out. No I/O, so tests drive it directly.
struct MembershipState: Sendable {
    enum Change: Sendable, Equatable {
        /// A member to connect to (new, or at a new address or incarnation).
        case discovered(NodeID, address: String)
        /// The ring (the members placement uses) changed.
        case ringChanged
        /// A member became unreachable or reachable again.
        case reachability(NodeID, reachable: Bool)
        /// This node learned its cluster from a member's gossip: it has joined.
        case joinedCluster(String)
        /// A member says this node was removed from the cluster (at its current incarnation).
        case removed(by: NodeID)
        /// The cluster knows this node's id at a later incarnation: its data directory is not the one it had.
        case identityTaken(incarnation: Incarnation)
    }

    /// What became of a gossip message.
    enum GossipVerdict: Sendable, Equatable {
        /// Merged (possibly changing nothing).
        case merged([Change])
        /// Neither side belongs to a cluster yet (two new nodes waiting for a seed): nothing to merge.
        case ignored
        /// The sender belongs to another cluster (founded apart): refused, nothing merged.
        case foreign(clusterID: String)
    }

    let selfID: NodeID
    /// The cluster this node belongs to; `nil` until it founds one or joins one through a seed.
    private(set) var clusterID: String?
    /// Grows whenever something kept in the data directory changes (members, addresses, incarnations,
    /// statuses, the cluster id): the node then writes its ring file.
    private(set) var storedVersion: UInt64 = 0
    private(set) var members: [NodeID: MemberRecord] = [:]
    /// Named actors: name to (actor, host).
    private(set) var registry: [String: (actor: ActorID, node: NodeID)] = [:]
    /// Named actors by id: they live where they were spawned, not where placement says.
    private(set) var named: [ActorID: NodeID] = [:]
    /// The ring's members with their placement hashes, sorted by id; rebuilt on change.
    private(set) var ring: [(node: NodeID, hash: UInt64)] = []
    private(set) var reachableRing: [(node: NodeID, hash: UInt64)] = []
    /// Grows whenever the ring, reachability or the named actors change: routing tables are rebuilt then.
    private(set) var generation: UInt64 = 0

    init(selfRecord: MemberRecord) {
        selfID = selfRecord.nodeID
        members[selfID] = selfRecord
        rebuildRing()
    }

    /// A view that starts from the ring a node kept in its data directory: every other member is in it with
    /// its last known status, and unreachable until heard from.
    init(selfRecord: MemberRecord, stored: StoredRing) {
        self.init(selfRecord: selfRecord)
        clusterID = stored.clusterID
        for member in stored.members where member.nodeID != selfID.rawValue {
            let id = NodeID(unchecked: member.nodeID)
            members[id] = MemberRecord(
                nodeID: id, address: member.address, incarnation: member.incarnation,
                status: MemberStatus(named: member.status) ?? .up, activations: 0, reachable: false, lastHeard: 0)
        }
        rebuildRing()
        storedVersion += 1
    }

    /// What the node keeps in its data directory (`nil` before it belongs to a cluster).
    var stored: StoredRing? {
        guard let clusterID else { return nil }
        return StoredRing(
            clusterID: clusterID,
            members: members.values.sorted { $0.nodeID < $1.nodeID }.map {
                StoredRing.Member(
                    nodeID: $0.nodeID.rawValue, address: $0.address, incarnation: $0.incarnation,
                    status: $0.status.description)
            })
    }

    /// Founds a new cluster with this node as its only member.
    mutating func found(clusterID: String) {
        precondition(self.clusterID == nil, "a node belongs to one cluster")
        self.clusterID = clusterID
        storedVersion += 1
    }

    var selfRecord: MemberRecord { members[selfID]! }

    mutating func setSelfStatus(_ status: MemberStatus) -> [Change] {
        members[selfID]!.status = status
        storedVersion += 1
        return rebuildRing() ? [.ringChanged] : []
    }

    mutating func setSelfActivations(_ count: Int) {
        members[selfID]!.activations = UInt32(clamping: count)
    }

    mutating func register(name: String, actor: ActorID, node: NodeID) {
        registry[name] = (actor, node)
        named[actor] = node
        generation += 1
    }

    /// Records that a frame arrived from `node` (of `incarnation`) at `now`.
    ///
    /// A handshake alone (`admitting: false`) only refreshes a member already known at that incarnation:
    /// a new member, or a new incarnation of one, is admitted from its gossip, which names its cluster.
    mutating func heard(
        from node: NodeID, incarnation: Incarnation, address: String, now: UInt64, admitting: Bool = false
    ) -> [Change] {
        guard node != selfID else { return [] }
        var changes: [Change] = []
        if var record = members[node] {
            guard record.status != .removed else { return [] }  // removed for good: never admitted again
            if incarnation > record.incarnation {
                guard admitting else { return [] }
                storedVersion += 1
                record.incarnation = incarnation
                record.status = .up
                if !address.isEmpty { record.address = address }
            }
            guard incarnation == record.incarnation else { return [] }  // a stale incarnation's last words
            record.lastHeard = now
            if !record.reachable {
                record.reachable = true
                changes.append(.reachability(node, reachable: true))
            }
            let statusChanged = members[node]?.status != record.status
            members[node] = record
            if statusChanged && rebuildRing() {
                changes.append(.ringChanged)
            } else if changes.contains(where: { if case .reachability = $0 { true } else { false } }) {
                _ = rebuildRing()
            }
        } else {
            guard admitting, !address.isEmpty else { return [] }  // not a member we could ever dial
            storedVersion += 1
            members[node] = MemberRecord(
                nodeID: node, address: address, incarnation: incarnation, status: .up, activations: 0,
                reachable: true, lastHeard: now)
            changes.append(.discovered(node, address: address))
            if rebuildRing() { changes.append(.ringChanged) }
        }
        return changes
    }

    /// Takes a gossip message from `sender` (the identity its connection proved): merges it when it comes
    /// from this node's cluster, admits a new node that is joining through this one, joins the sender's
    /// cluster when this node has none yet, and refuses a member of another cluster.
    mutating func receive(
        _ gossip: Gossip, from sender: NodeID, incarnation: Incarnation, address: String, now: UInt64
    ) -> GossipVerdict {
        let theirs = gossip.clusterID
        switch (clusterID, theirs) {
        case (nil, nil):
            return .ignored
        case (nil, let theirs?):
            clusterID = theirs
            storedVersion += 1
            let changes =
                heard(from: sender, incarnation: incarnation, address: address, now: now, admitting: true)
                + merge(gossip, now: now)
            return .merged([.joinedCluster(theirs)] + changes)
        case (_?, nil):
            // A new node joining through this one: it is admitted; what it knows (only itself) adds nothing.
            return .merged(heard(from: sender, incarnation: incarnation, address: address, now: now, admitting: true))
        case (let mine?, let theirs?):
            guard mine == theirs else { return .foreign(clusterID: theirs) }
            return .merged(
                heard(from: sender, incarnation: incarnation, address: address, now: now, admitting: true)
                    + merge(gossip, now: now))
        }
    }

    /// Merges a gossip message.
    mutating func merge(_ gossip: Gossip, now: UInt64) -> [Change] {
        var changes: [Change] = []
        var statusChanged = false
        for member in gossip.members {
            let id = NodeID(unchecked: member.nodeID)
            // A status this version does not know (a newer member's) is not guessed at: reading it as `up`
            // could bring back a member the sender knows as gone. The record is skipped.
            guard let status = MemberStatus(rawValue: member.status) else { continue }
            if id == selfID {
                // Removed by an operator, while this incarnation ran or before it started: it must stop serving.
                if status == .removed && !changes.contains(where: { if case .removed = $0 { true } else { false } }) {
                    changes.append(.removed(by: NodeID(unchecked: gossip.fromNode)))
                }
                // The cluster knows this id at a later incarnation than this process runs: the data directory
                // was replaced (or another process uses the id). Serving would start actors from nothing.
                if member.incarnation > selfRecord.incarnation {
                    changes.append(.identityTaken(incarnation: member.incarnation))
                }
                continue
            }
            guard NodeID.isValid(member.nodeID) else { continue }
            if var record = members[id] {
                if status == .removed || record.status == .removed {
                    // Removal is for good and wins over every incarnation, whatever order the news comes in.
                    if record.status != .removed {
                        record.status = .removed
                        statusChanged = true
                        storedVersion += 1
                    }
                    record.incarnation = max(record.incarnation, member.incarnation)
                } else if member.incarnation > record.incarnation {
                    storedVersion += 1
                    if record.address != member.address { changes.append(.discovered(id, address: member.address)) }
                    statusChanged = statusChanged || record.status != status
                    record.incarnation = member.incarnation
                    record.address = member.address
                    record.status = status
                    record.activations = member.activations
                } else if member.incarnation == record.incarnation {
                    if status > record.status {
                        record.status = status
                        statusChanged = true
                        storedVersion += 1
                    }
                    if id.rawValue == gossip.fromNode { record.activations = member.activations }
                }
                members[id] = record
            } else {
                // Learned second-hand: give it a full detection window before judging it.
                storedVersion += 1
                members[id] = MemberRecord(
                    nodeID: id, address: member.address, incarnation: member.incarnation, status: status,
                    activations: member.activations, reachable: true, lastHeard: now)
                statusChanged = true
                if status == .up { changes.append(.discovered(id, address: member.address)) }
            }
        }
        for named in gossip.registry where registry[named.name] == nil {
            register(name: named.name, actor: named.actor, node: NodeID(unchecked: named.nodeID))
        }
        if statusChanged && rebuildRing() { changes.append(.ringChanged) }
        return changes
    }

    /// Marks members not heard from within `threshold` nanoseconds as unreachable.
    mutating func checkReachability(now: UInt64, threshold: UInt64) -> [Change] {
        var changes: [Change] = []
        for (id, record) in members where id != selfID && record.reachable && record.status == .up {
            if now > record.lastHeard && now - record.lastHeard > threshold {
                members[id]!.reachable = false
                changes.append(.reachability(id, reachable: false))
            }
        }
        if !changes.isEmpty { _ = rebuildRing() }
        return changes
    }

    /// Removes a member for good (an operator's decision): ``MemberStatus/removed``.
    mutating func markRemoved(_ node: NodeID) -> [Change] {
        guard node != selfID, members[node] != nil else { return [] }
        members[node]!.status = .removed
        storedVersion += 1
        return rebuildRing() ? [.ringChanged] : []
    }

    /// A leaving member finished handing its actors off: its leave is complete (`left`).
    mutating func markDrained(_ node: NodeID) -> [Change] {
        guard node != selfID, members[node]?.status == .leaving else { return [] }
        members[node]!.status = .left
        storedVersion += 1
        return rebuildRing() ? [.ringChanged] : []
    }

    /// Rebuilds the ring; returns whether its membership changed.
    @discardableResult
    private mutating func rebuildRing() -> Bool {
        generation += 1
        let inRing = members.values.filter { $0.status == .up }.sorted { $0.nodeID < $1.nodeID }
        let newRing = inRing.map { ($0.nodeID, Placement.hash($0.nodeID)) }
        reachableRing = inRing.filter { $0.reachable || $0.nodeID == selfID }.map {
            ($0.nodeID, Placement.hash($0.nodeID))
        }
        let changed = newRing.map(\.0) != ring.map(\.node)
        ring = newRing
        return changed
    }

    /// The gossip message describing this view.
    func gossip() -> Gossip {
        Gossip(
            fromNode: selfID.rawValue, fromIncarnation: selfRecord.incarnation, clusterID: clusterID,
            members: members.values.map { record in
                Gossip.Member(
                    nodeID: record.nodeID.rawValue, address: record.address, incarnation: record.incarnation,
                    status: record.status.rawValue, activations: record.activations)
            },
            registry: registry.map { name, entry in
                Gossip.NamedActor(name: name, actor: entry.actor, nodeID: entry.node.rawValue)
            })
    }
}
