import FoundationEssentials
import PlexCore
import PlexWire
import Testing

@testable import PlexCluster

private func id(_ text: String) -> NodeID { NodeID(unchecked: text) }

private func clusterGossip(_ cluster: String, from: String, _ members: [(String, Incarnation, MemberStatus)])
    -> Gossip
{
    Gossip(clusterMessage(cluster, from: from, members))
}

private func clusterMessage(_ cluster: String, from: String, _ members: [(String, Incarnation, MemberStatus)])
    -> Plexspaces_V1_Gossip
{
    var message = gossipMessage(from: from, members)
    message.clusterID = cluster
    return message
}

@Suite("Cluster identity: joining, founding, the kept ring, removal")
struct ClusterIdentityTests {
    @Test("two new nodes waiting for a seed ignore each other's gossip: neither founds nor admits")
    func waitingNodes() {
        var a = MembershipState(selfRecord: record("a"))
        let verdict = a.receive(
            gossip(from: "b", [("b", 1, .up)]), from: id("b"), incarnation: 1, address: "b:1", now: 0)
        #expect(verdict == .ignored)
        #expect(a.clusterID == nil)
        #expect(a.ring.map(\.node.rawValue) == ["a"])
        #expect(a.stored == nil)
    }

    @Test("a new node joins the cluster named by a member's gossip and takes its members")
    func joinThroughGossip() {
        var a = MembershipState(selfRecord: record("a"))
        let verdict = a.receive(
            clusterGossip("c-1", from: "b", [("b", 1, .up), ("c", 2, .up)]), from: id("b"), incarnation: 1,
            address: "b:1", now: 0)
        guard case .merged(let changes) = verdict else { Issue.record("not merged: \(verdict)"); return }
        #expect(changes.contains(.joinedCluster("c-1")))
        #expect(changes.contains(.ringChanged))
        #expect(a.clusterID == "c-1")
        #expect(a.ring.map(\.node.rawValue) == ["a", "b", "c"])
        #expect(a.stored?.clusterID == "c-1")
    }

    @Test("a member admits a new node joining through it, and refuses a member of another cluster")
    func admitAndRefuse() {
        var a = MembershipState(selfRecord: record("a"))
        a.found(clusterID: "mine")
        let joiner = a.receive(
            gossip(from: "n", [("n", 1, .up)]), from: id("n"), incarnation: 1, address: "n:1", now: 0)
        guard case .merged(let changes) = joiner else { Issue.record("not merged: \(joiner)"); return }
        #expect(changes.contains(.ringChanged))
        #expect(a.ring.map(\.node.rawValue) == ["a", "n"])
        let foreign = a.receive(
            clusterGossip("theirs", from: "x", [("x", 1, .up), ("y", 1, .up)]), from: id("x"), incarnation: 1,
            address: "x:1", now: 0)
        #expect(foreign == .foreign(clusterID: "theirs"))
        #expect(a.members[id("x")] == nil)
        #expect(a.members[id("y")] == nil)
        #expect(a.ring.map(\.node.rawValue) == ["a", "n"])
    }

    @Test("a handshake alone admits no new member and no new incarnation; gossip does")
    func handshakeAdmitsNothing() {
        var a = MembershipState(selfRecord: record("a"))
        a.found(clusterID: "c")
        #expect(a.heard(from: id("b"), incarnation: 1, address: "b:1", now: 0).isEmpty)
        #expect(a.members[id("b")] == nil)
        _ = a.heard(from: id("b"), incarnation: 1, address: "b:1", now: 0, admitting: true)
        _ = a.checkReachability(now: 10_000, threshold: 1)
        #expect(a.heard(from: id("b"), incarnation: 2, address: "b:2", now: 20_000).isEmpty)
        #expect(a.members[id("b")]?.incarnation == 1)
        #expect(a.members[id("b")]?.reachable == false)
        // The same incarnation is refreshed by a handshake.
        #expect(!a.heard(from: id("b"), incarnation: 1, address: "b:1", now: 20_000).isEmpty)
        #expect(a.members[id("b")]?.reachable == true)
    }

    @Test("a node started from its kept ring has every member in the ring, unreachable until heard from")
    func startFromStoredRing() {
        let stored = StoredRing(
            clusterID: "c",
            members: [
                .init(nodeID: "a", address: "a:1", incarnation: 3, status: "up"),
                .init(nodeID: "b", address: "b:1", incarnation: 5, status: "up"),
                .init(nodeID: "c", address: "c:1", incarnation: 2, status: "leaving"),
                .init(nodeID: "d", address: "d:1", incarnation: 1, status: "left"),
            ])
        var a = MembershipState(selfRecord: record("a", incarnation: 4), stored: stored)
        #expect(a.clusterID == "c")
        #expect(a.selfRecord.incarnation == 4)
        #expect(a.ring.map(\.node.rawValue) == ["a", "b"])
        #expect(a.reachableRing.map(\.node.rawValue) == ["a"])
        #expect(a.members[id("b")]?.reachable == false)
        #expect(a.members[id("c")]?.status == .leaving)
        #expect(a.members[id("d")]?.status == .left)
        // Kept again as it was, with this start's incarnation.
        #expect(a.stored?.members.first { $0.nodeID == "a" }?.incarnation == 4)
        #expect(a.stored?.members.first { $0.nodeID == "b" } == stored.members[1])
        // The member comes back at a new incarnation: its gossip makes it reachable, in the same ring.
        let back = a.receive(
            clusterGossip("c", from: "b", [("b", 6, .up)]), from: id("b"), incarnation: 6, address: "b:1", now: 5)
        guard case .merged(let changes) = back else { Issue.record("not merged: \(back)"); return }
        #expect(!changes.contains(.ringChanged))
        #expect(a.reachableRing.map(\.node.rawValue) == ["a", "b"])
    }

    @Test("what is kept changes with members and statuses, not with reachability")
    func storedVersion() {
        var a = MembershipState(selfRecord: record("a"))
        a.found(clusterID: "c")
        let founded = a.storedVersion
        _ = a.receive(
            clusterGossip("c", from: "b", [("b", 1, .up)]), from: id("b"), incarnation: 1, address: "b", now: 0)
        let joined = a.storedVersion
        #expect(joined > founded)
        _ = a.checkReachability(now: 10_000, threshold: 1)
        _ = a.heard(from: id("b"), incarnation: 1, address: "b", now: 20_000)
        #expect(a.storedVersion == joined)
        _ = a.markRemoved(id("b"))
        #expect(a.storedVersion > joined)
    }

    @Test(
        "gossip saying this node was removed, at this incarnation or an earlier one, tells it to stop; a graceful leave does not"
    )
    func removal() {
        var a = MembershipState(selfRecord: record("a", incarnation: 3))
        a.found(clusterID: "c")
        let left = a.receive(
            clusterGossip("c", from: "b", [("b", 1, .up), ("a", 2, .left)]), from: id("b"), incarnation: 1,
            address: "b", now: 0)
        guard case .merged(let before) = left else { Issue.record("not merged: \(left)"); return }
        #expect(!before.contains(.removed(by: id("b"))))
        // Removed at incarnation 2, before this start (3): the node was started again on its data directory.
        let earlier = a.receive(
            clusterGossip("c", from: "b", [("b", 1, .up), ("a", 2, .removed)]), from: id("b"), incarnation: 1,
            address: "b", now: 0)
        guard case .merged(let changes) = earlier else { Issue.record("not merged: \(earlier)"); return }
        #expect(changes.contains(.removed(by: id("b"))))
        var running = MembershipState(selfRecord: record("a", incarnation: 3))
        running.found(clusterID: "c")
        let now = running.receive(
            clusterGossip("c", from: "b", [("b", 1, .up), ("a", 3, .removed)]), from: id("b"), incarnation: 1,
            address: "b", now: 0)
        guard case .merged(let stop) = now else { Issue.record("not merged: \(now)"); return }
        #expect(stop.contains(.removed(by: id("b"))))
        // A node that is leaving gracefully is not "removed" when others record its leave as complete.
        _ = a.setSelfStatus(.leaving)
        let leaving = a.receive(
            clusterGossip("c", from: "b", [("a", 3, .left)]), from: id("b"), incarnation: 1, address: "b", now: 0)
        #expect(leaving == .merged([]))
    }

    @Test("a removed member is never admitted again: not at a later incarnation, not through anyone's gossip")
    func removedForGood() {
        var a = MembershipState(selfRecord: record("a"))
        a.found(clusterID: "c")
        _ = a.receive(
            clusterGossip("c", from: "b", [("b", 1, .up), ("d", 1, .up)]), from: id("b"), incarnation: 1,
            address: "b", now: 0)
        #expect(a.ring.map(\.node.rawValue) == ["a", "b", "d"])
        #expect(a.markRemoved(id("d")) == [.ringChanged])
        // d starts again on its data directory (incarnation 2) and dials a: its handshake and gossip admit nothing.
        #expect(a.heard(from: id("d"), incarnation: 2, address: "d", now: 1, admitting: true).isEmpty)
        _ = a.receive(
            clusterGossip("c", from: "d", [("d", 2, .up)]), from: id("d"), incarnation: 2, address: "d", now: 1)
        // b admitted d's new incarnation before it heard of the removal: its gossip does not bring d back.
        _ = a.merge(clusterGossip("c", from: "b", [("b", 1, .up), ("d", 2, .up)]), now: 2)
        #expect(a.members[id("d")]?.status == .removed)
        #expect(a.ring.map(\.node.rawValue) == ["a", "b"])
        #expect(a.stored?.members.first { $0.nodeID == "d" }?.status == "removed")
        // And the other way round: b, which had d up at incarnation 2, learns of the removal at incarnation 1.
        var b = MembershipState(selfRecord: record("b"))
        b.found(clusterID: "c")
        _ = b.merge(clusterGossip("c", from: "x", [("d", 2, .up)]), now: 0)
        _ = b.merge(clusterGossip("c", from: "a", [("d", 1, .removed)]), now: 1)
        #expect(b.members[id("d")]?.status == .removed)
        #expect(!b.ring.contains { $0.node == id("d") })
    }

    @Test("a member status this version does not know is skipped, never read as up")
    func unknownStatus() {
        var a = MembershipState(selfRecord: record("a"))
        a.found(clusterID: "c")
        _ = a.receive(
            clusterGossip("c", from: "b", [("b", 1, .up), ("d", 1, .up)]), from: id("b"), incarnation: 1,
            address: "b", now: 0)
        _ = a.markRemoved(id("d"))
        var message = clusterMessage("c", from: "b", [("b", 1, .up), ("d", 2, .up), ("e", 1, .up)])
        message.members[1].status = .UNRECOGNIZED(9)
        message.members[2].status = .UNRECOGNIZED(9)
        _ = a.merge(Gossip(message), now: 1)
        #expect(a.members[id("d")]?.status == .removed)
        #expect(a.members[id("e")] == nil)
    }

    @Test("a leaving member that finished pushing is left; an up member is not touched")
    func drained() {
        var a = MembershipState(selfRecord: record("a"))
        a.found(clusterID: "c")
        _ = a.receive(
            clusterGossip("c", from: "b", [("b", 1, .up), ("c", 1, .up)]), from: id("b"), incarnation: 1,
            address: "b", now: 0)
        _ = a.merge(clusterGossip("c", from: "b", [("b", 1, .leaving)]), now: 0)
        #expect(a.markDrained(id("c")).isEmpty)
        #expect(a.members[id("c")]?.status == .up)
        _ = a.markDrained(id("b"))
        #expect(a.members[id("b")]?.status == .left)
    }

    @Test("the ring file round-trips; a damaged or newer one is refused with a typed error")
    func ringFile() throws {
        let directory = FileManager.default.temporaryDirectory.path + "/plex-ring-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        #expect(try RingStore.load(dataDirectory: directory) == nil)
        let ring = StoredRing(
            clusterID: "c-1", members: [.init(nodeID: "a", address: "127.0.0.1:1", incarnation: 2, status: "up")])
        try RingStore.save(ring, dataDirectory: directory)
        #expect(try RingStore.load(dataDirectory: directory) == ring)
        let path = directory + "/" + RingStore.fileName
        try Data("{\"clusterID\": ".utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: NodeError.self) { try RingStore.load(dataDirectory: directory) }
        do {
            _ = try RingStore.load(dataDirectory: directory)
        } catch let error as NodeError {
            #expect(error.code == .dataDirectory)
            #expect(error.message.contains("damaged"))
        }
        var newer = ring
        newer.version = 99
        try RingStore.save(newer, dataDirectory: directory)
        #expect(throws: NodeError.self) { try RingStore.load(dataDirectory: directory) }
    }
}
