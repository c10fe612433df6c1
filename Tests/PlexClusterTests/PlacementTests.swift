import PlexCore
import Testing

@testable import PlexCluster

@Suite("Rendezvous placement")
struct PlacementTests {
    let nodes = try! ["node-1", "node-2", "node-3"].map { try NodeID($0) }

    @Test("owners match an independent computation of the definition")
    func golden() throws {
        // From a Python transcription of DESIGN.md §5 and StableHash.
        let expected = [
            "alpha": "node-1", "epsilon": "node-3", "zeta": "node-3", "c1": "node-1",
        ]
        for (key, owner) in expected {
            #expect(Placement.owner(of: ActorID(typeName: "counter", key: key), among: nodes)?.rawValue == owner)
        }
        #expect(Placement.owner(of: ActorID(typeName: "echo", key: "b"), among: nodes)?.rawValue == "node-3")
    }

    @Test("actors spread evenly")
    func spread() {
        var counts: [NodeID: Int] = [:]
        for i in 0..<3000 {
            counts[Placement.owner(of: ActorID(typeName: "counter", key: "k\(i)"), among: nodes)!, default: 0] += 1
        }
        for node in nodes { #expect((900...1100).contains(counts[node] ?? 0)) }
    }

    @Test("adding a node moves only the actors it wins; removing one moves only its own")
    func minimalMovement() throws {
        let four = nodes + [try NodeID("node-4")]
        for i in 0..<2000 {
            let id = ActorID(typeName: "counter", key: "k\(i)")
            let before = Placement.owner(of: id, among: nodes)!
            let after = Placement.owner(of: id, among: four)!
            #expect(after == before || after.rawValue == "node-4")
            let without = Placement.owner(of: id, among: nodes.filter { $0.rawValue != "node-2" })!
            #expect(before.rawValue == "node-2" || without == before)
        }
    }

    @Test("the order of the member list does not matter")
    func orderIndependent() {
        for i in 0..<200 {
            let id = ActorID(typeName: "t", key: "\(i)")
            #expect(Placement.owner(of: id, among: nodes) == Placement.owner(of: id, among: nodes.reversed()))
        }
        #expect(Placement.owner(of: ActorID(typeName: "t", key: "x"), among: []) == nil)
    }
}
