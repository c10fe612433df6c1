import Logging
import PlexCore
import PlexExamples
import PlexSpaces
import PlexTestKit
import Testing

@testable import PlexTransport

/// What the relay rewrites, and in which frame.
struct RelayCase: Sendable, CustomStringConvertible {
    var initiator = HandshakeRelay.Claims()
    var acceptor = HandshakeRelay.Claims()

    var description: String {
        [
            initiator.description.isEmpty ? nil : "initiator claims \(initiator)",
            acceptor.description.isEmpty ? nil : "acceptor claims \(acceptor)",
        ].compactMap { $0 }.joined(separator: "; ")
    }

    static let all: [RelayCase] = [
        RelayCase(initiator: .init(nodeID: "mallory")),
        RelayCase(initiator: .init(incarnation: 99)),
        RelayCase(initiator: .init(listenAddress: "127.0.0.1:1")),
        RelayCase(initiator: .init(role: .client)),
        RelayCase(acceptor: .init(nodeID: "mallory")),
        RelayCase(acceptor: .init(incarnation: 99)),
        RelayCase(acceptor: .init(listenAddress: "127.0.0.1:1")),
    ]
}

@Suite("Handshakes through a relay", .timeLimit(.minutes(1)))
struct HandshakeRelayTests {
    @Test("a direct handshake and one through an honest relay both succeed")
    func honestRelay() async throws {
        let node = try await Endpoint.start("b", incarnation: 7)
        let client = try await Endpoint.start("a", incarnation: 3)
        let direct = try await client.transport.connect(to: node.address, delegate: client.delegate)
        #expect(direct.peer.nodeID.rawValue == "b")
        let relay = try await HandshakeRelay.start(target: node.address)
        let relayed = try await client.transport.connect(to: relay.address, delegate: client.delegate)
        #expect(relayed.peer.nodeID.rawValue == "b" && relayed.peer.incarnation == 7)
        #expect(relay.relayedFrames >= 4 && relay.rewrittenFrames == 0)
        try await eventually("b knows a twice, both times as a#3") {
            node.delegate.established.withLock { $0.map(\.description) }
                == Array(repeating: "a#3@\(client.address)", count: 2)
        }
        await relay.close()
        await client.transport.shutdown()
        await node.transport.shutdown()
    }

    @Test("proofs relayed onto a connection whose identities a relay rewrote are refused", arguments: RelayCase.all)
    func tamperingRelay(tampering: RelayCase) async throws {
        let node = try await Endpoint.start("b", incarnation: 7)
        let client = try await Endpoint.start("a", incarnation: 3)
        let relay = try await HandshakeRelay.start(
            target: node.address, rewritingInitiator: tampering.initiator, rewritingAcceptor: tampering.acceptor)
        let error = await #expect(throws: TransportError.self) {
            _ = try await client.transport.connect(to: relay.address, delegate: client.delegate)
        }
        #expect(error?.code == .handshakeRefused)
        #expect(error?.message.contains("did not prove the cluster secret for this connection") == true)
        #expect(relay.rewrittenFrames == 1, "the relay did rewrite a claim")
        // The node hears the refusal, logs it typed, and never counts the connection as established.
        try await eventually("the node logs the refusal") {
            node.logged("handshake refused", "TransportError.handshakeRefused")
        }
        #expect(node.delegate.established.withLock { $0.isEmpty })
        #expect(client.delegate.established.withLock { $0.isEmpty })
        await relay.close()
        await client.transport.shutdown()
        await node.transport.shutdown()
    }

    @Test("a real node: a client through an honest relay calls; one whose hello is rewritten is refused")
    func realNode() async throws {
        try await withTestCluster(nodes: 1, transport: .loopbackTCP, register: { $0.registerExamples() }) { cluster in
            let secret = Array("test-secret-0123456789".utf8)
            let honest = try await HandshakeRelay.start(target: cluster.node(0).address)
            let client = try await PlexClient.connect(to: honest.address, clusterName: "test", secret: secret)
            #expect(try await client.ask(Counter.self, key: "through-relay", .increment).count == 1)
            await client.close()
            await honest.close()

            let lying = try await HandshakeRelay.start(
                target: cluster.node(0).address, rewritingInitiator: .init(nodeID: "node-9", role: .node))
            let error = await #expect(throws: TransportError.self) {
                _ = try await PlexClient.connect(to: lying.address, clusterName: "test", secret: secret)
            }
            #expect(error?.code == .handshakeRefused)
            #expect(lying.rewrittenFrames == 1)
            try await eventually("the node logs the refusal") {
                cluster.logs.all.contains {
                    $0.contains("handshake refused") && $0.contains("TransportError.handshakeRefused")
                }
            }
            #expect(!cluster.node(0).members.contains { $0.nodeID.rawValue == "node-9" })
            await lying.close()
        }
    }
}
