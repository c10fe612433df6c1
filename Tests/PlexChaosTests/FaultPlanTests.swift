import NIOCore
import PlexChaos
import PlexCore
import PlexTestKit
import PlexTransport
import PlexWire
import Testing

@Suite("FaultPlan")
struct FaultPlanTests {
    func faults(seed: UInt64, count: Int = 50, kinds: [FaultKind] = FaultKind.allCases, nodes: Int = 3)
        -> [(Duration, PlannedFault)]
    {
        var plan = FaultPlan(seed: seed, nodes: nodes, kinds: kinds, unreachableAfter: .seconds(1))
        return (0..<count).map { _ in plan.next() }
    }

    @Test("the same seed plans the same faults; another seed others")
    func reproducible() {
        let first = faults(seed: 7)
        let again = faults(seed: 7)
        #expect(first.map(\.0) == again.map(\.0) && first.map(\.1) == again.map(\.1))
        #expect(faults(seed: 8).map(\.1) != first.map(\.1))
    }

    @Test("every kind asked for is drawn, and no other")
    func kinds() {
        #expect(Set(faults(seed: 1).map(\.1.kind)) == Set(FaultKind.allCases))
        #expect(Set(faults(seed: 1, kinds: [.kill, .stop]).map(\.1.kind)) == [.kill, .stop])
    }

    @Test("durations scale with unreachable_after: a stop outlasts it, a partition lasts long enough to be seen")
    func durations() {
        for (pause, fault) in faults(seed: 3, count: 200) {
            #expect(pause >= .seconds(1) && pause <= .seconds(5))
            switch fault {
            case .kill(let node, let downFor), .wipe(let node, let downFor):
                #expect((0..<3).contains(node) && downFor >= .milliseconds(200) && downFor <= .seconds(3))
            case .stop(_, let stoppedFor):
                #expect(stoppedFor > .seconds(1) && stoppedFor <= .seconds(4))
            case .cold(let order, let gaps):
                #expect(order.sorted() == [0, 1, 2] && gaps.count == 3)
            case .seedless(let alone, let aloneFor, let order, let gaps):
                #expect((order + [alone]).sorted() == [0, 1, 2] && gaps.count == 2)
                #expect(aloneFor > .seconds(3), "longer than the join timeout")
            case .partition(let shape, let lasting, _, let removing):
                #expect(lasting >= .seconds(4))
                switch shape {
                case .isolate(let node):
                    #expect((0..<3).contains(node) && removing == nil)
                case .split(let a, let b):
                    #expect(a != b && removing == a, "removal is tried of one side through the other")
                }
            }
        }
    }

    @Test("two nodes never split (a split needs a third node to disagree)")
    func twoNodes() {
        for (_, fault) in faults(seed: 5, count: 100, kinds: [.partition], nodes: 2) {
            guard case .partition(.isolate, _, _, nil) = fault else {
                Issue.record("unexpected \(fault)")
                return
            }
        }
    }

    @Test("seeded streams are independent and reproducible")
    func streams() {
        var a = SeededGenerator.stream(1, of: 42)
        var b = SeededGenerator.stream(2, of: 42)
        var again = SeededGenerator.stream(1, of: 42)
        let drawn = (0..<8).map { _ in a.next() }
        #expect(drawn == (0..<8).map { _ in again.next() })
        #expect(drawn != (0..<8).map { _ in b.next() })
    }
}

@Suite("HelloDialer")
struct HelloDialerTests {
    func hello(role: PeerRole, nodeID: String) -> [UInt8] {
        var machine = HandshakeStateMachine(
            side: .initiator,
            configuration: HandshakeConfiguration(clusterName: "c", secret: Array("secret-0123456789abc".utf8)),
            local: PeerIdentity(
                role: role, nodeID: NodeID(unchecked: nodeID), incarnation: 3, listenAddress: "127.0.0.1:1"))
        guard case .send(let frame)? = machine.start().first else { return [] }
        var buffer = ByteBuffer()
        buffer.writeFrame(frame)
        return Array(buffer.readableBytesView)
    }

    @Test("a node's hello names the node, in pieces as it arrives; a client's names the client")
    func names() {
        let bytes = hello(role: .node, nodeID: "node-2")
        #expect(!bytes.isEmpty)
        for cut in [1, 4, 10, bytes.count - 1] {
            #expect(HelloDialer.identify(Array(bytes[..<cut])) == .needMoreBytes)
        }
        #expect(HelloDialer.identify(bytes) == .dialer("node-2"))
        #expect(HelloDialer.identify(bytes + [1, 2, 3]) == .dialer("node-2"), "bytes after the hello do not matter")
        #expect(HelloDialer.identify(hello(role: .client, nodeID: "client")) == .dialer(HelloDialer.client))
    }

    @Test("anything else is unknown")
    func unknown() {
        #expect(HelloDialer.identify(Array("GET / HTTP/1.1\r\n\r\n".utf8)) == .unknown)
        #expect(HelloDialer.identify([0, 0, 0, 2, 1, 1]) == .unknown, "shorter than a header")
        var call = ByteBuffer()
        call.writeFrame(Wire.Frame(kind: .call, body: ByteBuffer(bytes: [1, 2, 3])))
        #expect(HelloDialer.identify(Array(call.readableBytesView)) == .unknown)
    }
}
