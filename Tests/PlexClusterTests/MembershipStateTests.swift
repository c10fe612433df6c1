import PlexCore
import PlexWire
import Testing

@testable import PlexCluster

func record(_ id: String, incarnation: Incarnation = 1, status: MemberStatus = .up, heard: UInt64 = 0) -> MemberRecord {
    MemberRecord(
        nodeID: NodeID(unchecked: id), address: "127.0.0.1:\(id.count)", incarnation: incarnation, status: status,
        activations: 0, reachable: true, lastHeard: heard)
}

/// Gossip as it arrives in a frame: built as the wire message, read through the wire edge.
func gossip(from: String, _ members: [(String, Incarnation, MemberStatus)]) -> Gossip {
    Gossip(gossipMessage(from: from, members))
}

func gossipMessage(from: String, _ members: [(String, Incarnation, MemberStatus)]) -> Plexspaces_V1_Gossip {
    var message = Plexspaces_V1_Gossip()
    message.fromNode = from
    message.members = members.map { id, incarnation, status in
        var member = Plexspaces_V1_Member()
        member.nodeID = id
        member.address = "addr-\(id)-\(incarnation)"
        member.incarnation = incarnation
        member.status = Plexspaces_V1_MemberStatus(rawValue: status.rawValue)!
        return member
    }
    return message
}

@Suite("Membership state")
struct MembershipStateTests {
    @Test("gossip adds members and changes the ring; a second copy changes nothing")
    func merge() {
        var state = MembershipState(selfRecord: record("a"))
        let changes = state.merge(gossip(from: "b", [("b", 1, .up), ("c", 1, .up)]), now: 10)
        #expect(changes.contains(.ringChanged))
        #expect(changes.contains(.discovered(NodeID(unchecked: "c"), address: "addr-c-1")))
        #expect(state.ring.map(\.node.rawValue) == ["a", "b", "c"])
        #expect(state.merge(gossip(from: "b", [("b", 1, .up), ("c", 1, .up)]), now: 20).isEmpty)
    }

    @Test("a higher incarnation wins; a stale one is ignored")
    func incarnations() {
        var state = MembershipState(selfRecord: record("a"))
        _ = state.merge(gossip(from: "b", [("b", 2, .up)]), now: 0)
        _ = state.merge(gossip(from: "c", [("b", 1, .leaving)]), now: 0)
        #expect(state.members[NodeID(unchecked: "b")]?.status == .up)
        #expect(state.members[NodeID(unchecked: "b")]?.incarnation == 2)
        let changes = state.merge(gossip(from: "c", [("b", 3, .up)]), now: 0)
        #expect(changes.contains(.discovered(NodeID(unchecked: "b"), address: "addr-b-3")))
        #expect(state.members[NodeID(unchecked: "b")]?.incarnation == 3)
    }

    @Test("at equal incarnation the later status wins, and leaving takes the member out of the ring")
    func statusOrder() {
        var state = MembershipState(selfRecord: record("a"))
        _ = state.merge(gossip(from: "b", [("b", 1, .up)]), now: 0)
        let changes = state.merge(gossip(from: "b", [("b", 1, .leaving)]), now: 0)
        #expect(changes.contains(.ringChanged))
        #expect(state.ring.map(\.node.rawValue) == ["a"])
        _ = state.merge(gossip(from: "c", [("b", 1, .up)]), now: 0)
        #expect(state.members[NodeID(unchecked: "b")]?.status == .leaving)
    }

    @Test("gossip about this node never overrides its own record")
    func selfRecord() {
        var state = MembershipState(selfRecord: record("a", incarnation: 4))
        _ = state.merge(gossip(from: "b", [("a", 9, .left)]), now: 0)
        #expect(state.selfRecord.incarnation == 4)
        #expect(state.selfRecord.status == .up)
    }

    @Test(
        "silence beyond the threshold makes a member unreachable (still in the ring); hearing from it again restores it"
    )
    func failureDetector() {
        var state = MembershipState(selfRecord: record("a"))
        _ = state.heard(from: NodeID(unchecked: "b"), incarnation: 1, address: "x", now: 1_000, admitting: true)
        #expect(state.checkReachability(now: 1_500, threshold: 1_000).isEmpty)
        let down = state.checkReachability(now: 2_500, threshold: 1_000)
        #expect(down == [.reachability(NodeID(unchecked: "b"), reachable: false)])
        #expect(state.ring.map(\.node.rawValue) == ["a", "b"])  // pinned placement still counts it
        #expect(state.reachableRing.map(\.node.rawValue) == ["a"])
        let up = state.heard(from: NodeID(unchecked: "b"), incarnation: 1, address: "x", now: 3_000)
        #expect(up.contains(.reachability(NodeID(unchecked: "b"), reachable: true)))
        #expect(state.reachableRing.map(\.node.rawValue) == ["a", "b"])
    }

    @Test("a restarted member (higher incarnation) is up again at its new address")
    func restart() {
        var state = MembershipState(selfRecord: record("a"))
        _ = state.heard(from: NodeID(unchecked: "b"), incarnation: 1, address: "old", now: 0, admitting: true)
        _ = state.checkReachability(now: 10_000, threshold: 1)
        _ = state.heard(from: NodeID(unchecked: "b"), incarnation: 2, address: "new", now: 20_000, admitting: true)
        let b = state.members[NodeID(unchecked: "b")]
        #expect(b?.incarnation == 2)
        #expect(b?.address == "new")
        #expect(b?.reachable == true)
        // A late frame from the old incarnation does not count as a heartbeat.
        _ = state.checkReachability(now: 30_000, threshold: 5_000)
        _ = state.heard(from: NodeID(unchecked: "b"), incarnation: 1, address: "old", now: 30_001)
        #expect(state.members[NodeID(unchecked: "b")]?.reachable == false)
    }

    @Test("named actors travel in gossip")
    func registry() {
        var a = MembershipState(selfRecord: record("a"))
        a.register(name: "leader", actor: ActorID(typeName: "echo", key: "l"), node: NodeID(unchecked: "a"))
        var b = MembershipState(selfRecord: record("b"))
        _ = b.merge(a.gossip(), now: 0)
        #expect(b.registry["leader"]?.node.rawValue == "a")
        #expect(b.named[ActorID(typeName: "echo", key: "l")]?.rawValue == "a")
    }
}
