import Foundation
import PlexCertificates
import PlexCore
import PlexExamples
import PlexTestKit
import PlexTransport
import Testing

@testable import PlexCluster

/// A cluster whose every connection runs mutual TLS, in process on loopback TCP: calls route between the nodes,
/// a crashed node comes back with its durable actors, and a certificate near its end is reported.
@Suite("Clusters over mutual TLS", .timeLimit(.minutes(1)))
struct TLSClusterTests {
    /// A setup that gives each node a certificate for its node id from `authority`, valid for `validity`.
    static func certificates(from authority: CertificateAuthority, validity: Duration = .seconds(365 * 86_400))
        -> @Sendable (inout NodeConfiguration) -> Void
    {
        { configuration in
            let issued = try! authority.issue(for: .node(configuration.nodeID!.rawValue), validity: validity)
            configuration.tls = try! TransportTLS(
                authorityPEM: authority.certificatePEM, certificatePEM: issued.certificatePEM, keyPEM: issued.keyPEM)
        }
    }

    @Test("calls cross TLS between nodes; the owner crashes and restarts with every acknowledged deposit")
    func durableOverTLS() async throws {
        let authority = try CertificateAuthority.create(name: "tls-cluster")
        try await withTestCluster(
            nodes: 3, transport: .loopbackTCP, setup: Self.certificates(from: authority),
            register: { $0.registerExamples() }
        ) { cluster in
            let entry = cluster.node(0)
            let owner = cluster.node(2)
            let key = keys(ownedBy: owner.nodeID, on: entry, count: 1)[0]
            let ledger = entry.actor(Ledger.self, key: key)
            for _ in 0..<5 { _ = try await ledger.ask(.deposit(amount: 10)) }
            await cluster.crash(2)
            _ = try await cluster.restart(2)
            try await eventually("the ledger is back with its balance", within: .seconds(20)) {
                try await ledger.ask(.balance).balance == 50
            }
        }
    }

    @Test("a node whose certificate expires within 14 days says so in its status; one with a year left does not")
    func expiryWarning() async throws {
        let authority = try CertificateAuthority.create(name: "tls-cluster")
        try await withTestCluster(
            nodes: 1, transport: .loopbackTCP,
            setup: Self.certificates(from: authority, validity: .seconds(5 * 86_400 + 43_200)),
            register: { $0.registerExamples() }
        ) { cluster in
            let warnings = cluster.node(0).admin.status().status.warnings
            #expect(warnings.count == 1)
            #expect(warnings.first?.contains("node node-0 expires at") == true, "\(warnings)")
            #expect(warnings.first?.contains("in 5 days") == true, "\(warnings)")
            #expect(warnings.first?.contains("SIGHUP") == true)
        }
        try await withTestCluster(
            nodes: 1, transport: .loopbackTCP, setup: Self.certificates(from: authority),
            register: { $0.registerExamples() }
        ) { cluster in
            #expect(cluster.node(0).admin.status().status.warnings.isEmpty)
        }
    }

    @Test("a TLS configuration without a node id is refused before the data directory is touched")
    func noNodeID() async throws {
        let authority = try CertificateAuthority.create(name: "tls-cluster")
        let issued = try authority.issue(for: .node("node-0"))
        let directory = FileManager.default.temporaryDirectory.path + "/plex-tls-noid-\(UUID())"
        var configuration = NodeConfiguration(dataDirectory: directory, secret: Array("test-secret-0123456789".utf8))
        configuration.tls = try TransportTLS(
            authorityPEM: authority.certificatePEM, certificatePEM: issued.certificatePEM, keyPEM: issued.keyPEM)
        let error = await #expect(throws: NodeError.self) { _ = try await PlexNode.start(configuration) }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("without a node_id") == true, "\(String(describing: error))")
        #expect(!FileManager.default.fileExists(atPath: directory), "no id was generated and kept")
    }

    @Test("a node refuses to start with a certificate issued for another node id")
    func wrongNodeID() async throws {
        let authority = try CertificateAuthority.create(name: "tls-cluster")
        let error = await #expect(throws: NodeError.self) {
            try await withTestCluster(
                nodes: 1, transport: .loopbackTCP,
                setup: { configuration in
                    let issued = try! authority.issue(for: .node("someone-else"))
                    configuration.tls = try! TransportTLS(
                        authorityPEM: authority.certificatePEM, certificatePEM: issued.certificatePEM,
                        keyPEM: issued.keyPEM)
                }, register: { $0.registerExamples() }
            ) { _ in }
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("the certificate is for node someone-else, but this node is node-0") == true)
    }
}
