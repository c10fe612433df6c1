import Logging
import NIOCore
import PlexCore
import PlexExamples
import PlexTestKit
import PlexTransport
import PlexWire
import Testing

@testable import PlexCluster

/// Without TLS, a second secret gives a client the caller role only: handing a script the right to call actors
/// no longer hands it the right to stop or remove nodes.
@Suite("The caller secret", .timeLimit(.minutes(1)))
struct CallerSecretTests {
    static let clusterSecret = Array("test-secret-0123456789".utf8)
    static let callerSecret = Array("caller-secret-0123456789".utf8)

    @Test("a client proving the caller secret calls actors and reads the status; stop and remove are refused, logged")
    func caller() async throws {
        try await withTestCluster(
            nodes: 2, transport: .loopbackTCP, setup: { $0.callerSecret = Self.callerSecret },
            register: { $0.registerExamples() }
        ) { cluster in
            let entry = cluster.node(0)
            let client = try await PlexClient.connect(
                to: entry.address, clusterName: "test", secret: Self.callerSecret, credential: .caller)
            _ = try await client.ask(Counter.self, key: "c", .increment)
            #expect(try await client.status().members.count == 2)
            let stop = await #expect(throws: CallError.self) { _ = try await client.stopNode() }
            #expect(stop?.code == .permissionDenied)
            #expect(stop?.message.contains("proved the caller secret") == true)
            let remove = await #expect(throws: CallError.self) {
                _ = try await client.removeMember(cluster.node(1).nodeID.rawValue)
            }
            #expect(remove?.code == .permissionDenied)
            #expect(entry.isJoined && cluster.node(1).isJoined, "nothing was done")
            try await eventually("logged") {
                cluster.logs.all.contains {
                    $0.contains("refusing an admin request") && $0.contains("permissionDenied")
                }
            }
            await client.close()
            // The cluster secret still has every right: a status from an admin works as before.
            let admin = try await PlexClient.connect(to: entry.address, clusterName: "test", secret: Self.clusterSecret)
            #expect(try await admin.status().members.count == 2)
            await admin.close()
        }
    }

    @Test("refused: the caller secret where a node has none, a wrong caller secret, the caller secret as the cluster's")
    func refusals() async throws {
        try await withTestCluster(nodes: 1, transport: .loopbackTCP, register: { $0.registerExamples() }) { plain in
            let error = await #expect(throws: TransportError.self) {
                _ = try await PlexClient.connect(
                    to: plain.node(0).address, clusterName: "test", secret: Self.callerSecret, credential: .caller)
            }
            #expect(error?.message.contains("takes no caller secret") == true, "\(String(describing: error))")
        }
        try await withTestCluster(
            nodes: 1, transport: .loopbackTCP, setup: { $0.callerSecret = Self.callerSecret },
            register: { $0.registerExamples() }
        ) { cluster in
            let address = cluster.node(0).address
            let wrong = await #expect(throws: TransportError.self) {
                _ = try await PlexClient.connect(
                    to: address, clusterName: "test", secret: Array("another-secret-0123456789".utf8),
                    credential: .caller)
            }
            #expect(wrong?.code == .handshakeRefused)
            await #expect(throws: TransportError.self, "the caller secret proves nothing as the cluster secret") {
                _ = try await PlexClient.connect(to: address, clusterName: "test", secret: Self.callerSecret)
            }
        }
    }

    @Test("a node's configuration refuses a short caller secret, or one equal to the cluster secret")
    func configuration() throws {
        var configuration = NodeConfiguration(dataDirectory: "/tmp/x", secret: Self.clusterSecret)
        configuration.callerSecret = Array("short".utf8)
        #expect(throws: NodeError.self) { try configuration.validate() }
        configuration.callerSecret = Self.clusterSecret
        let same = #expect(throws: NodeError.self) { try configuration.validate() }
        #expect(same?.message.contains("must differ from the cluster secret") == true)
        configuration.callerSecret = Self.callerSecret
        try configuration.validate()
    }
}

/// Only members answer a node's calls: a client claiming a member's node id cannot complete its calls.
@Suite("Reply frames from clients", .timeLimit(.minutes(1)))
struct ForgedReplyTests {
    @Test("a client that names itself after a member and floods reply frames forges no answer; it is cut off, logged")
    func forgedReplies() async throws {
        try await withTestCluster(
            nodes: 3, transport: .loopbackTCP, setup: { $0.callerSecret = CallerSecretTests.callerSecret },
            register: { $0.registerExamples() }
        ) { cluster in
            let entry = cluster.node(0)
            let owner = cluster.node(2)
            let key = keys(ownedBy: owner.nodeID, on: entry, count: 1)[0]
            let spoofer = TCPTransport(
                configuration: .init(
                    handshake: HandshakeConfiguration(
                        clusterName: "test", secret: CallerSecretTests.callerSecret, credential: .caller)),
                logger: Logger(label: "spoofer"))
            spoofer.setLocalIdentity(
                PeerIdentity(role: .client, nodeID: owner.nodeID, incarnation: 0, listenAddress: ""))
            let connection = try await spoofer.connect(to: entry.address, delegate: NoDelegate())
            // Reply frames for every correlation id the entry's calls to the owner will use, over and over while
            // they run.
            let forged = Task {
                while !Task.isCancelled {
                    for correlation in UInt64(1)...400 {
                        connection.send(
                            Wire.Frame(
                                kind: .reply, correlationID: correlation, body: ByteBuffer(bytes: Array("forged".utf8)))
                        )
                    }
                    await Task.yield()
                }
            }
            let counter = entry.actor(Counter.self, key: key)
            for expected in 1...100 {
                let reply = try await counter.ask(.increment)
                #expect(reply.count == expected && reply.node == owner.nodeID.rawValue)
            }
            forged.cancel()
            await forged.value
            try await eventually("the spoofer is cut off, logged") {
                cluster.logs.all.contains { $0.contains("closing a client connection that sent a reply frame") }
            }
            await spoofer.shutdown()
        }
    }
}

final class NoDelegate: ConnectionDelegate {
    func connectionEstablished(_ connection: any Connection) {}
    func received(_ frame: Wire.Frame, on connection: any Connection) {}
    func connectionClosed(_ connection: any Connection, error: (any Error)?) {}
}
