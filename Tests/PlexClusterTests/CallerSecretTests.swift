import PlexCore
import PlexExamples
import PlexTestKit
import PlexTransport
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
