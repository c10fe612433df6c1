import Foundation
import Logging
import NIOCore
import PlexCertificates
import PlexCore
import PlexTestKit
import PlexWire
import Testing

@testable import PlexTransport

/// A cluster CA made in memory, issuing TLS configurations for the transports under test.
struct TestAuthority {
    let authority: CertificateAuthority

    init(name: String = "test CA") throws {
        authority = try CertificateAuthority.create(name: name)
    }

    func tls(
        _ identity: PlexIdentity, issuedAt: Date = Date(), validity: Duration = .seconds(86_400), now: Date = Date()
    )
        throws -> TransportTLS
    {
        let issued = try authority.issue(for: identity, validity: validity, now: issuedAt)
        return try TransportTLS(
            authorityPEM: authority.certificatePEM, certificatePEM: issued.certificatePEM, keyPEM: issued.keyPEM,
            now: now)
    }

    func tls(node id: String) throws -> TransportTLS { try tls(.node(id)) }
}

@Suite("Mutual TLS on the cluster transport", .timeLimit(.minutes(1)))
struct TLSTransportTests {
    @Test("two nodes with certificates from the cluster's CA connect; each learns the other's certified identity")
    func connects() async throws {
        let ca = try TestAuthority()
        let b = try await Endpoint.start("b") { $0.tls = try? ca.tls(node: "b") }
        let a = try await Endpoint.start("a") { $0.tls = try? ca.tls(node: "a") }
        let connection = try await a.transport.connect(to: b.address, delegate: a.delegate)
        #expect(connection.peer.nodeID.rawValue == "b")
        #expect(connection.peer.certified == .node("b"))
        try await eventually("b knows a by its certificate") {
            b.delegate.established.withLock { $0.first?.certified } == .node("a")
        }
        connection.send(Wire.Frame(kind: .gossip, body: ByteBuffer(bytes: [1, 2, 3])))
        try await eventually("a frame crosses TLS") {
            b.delegate.frames.withLock { $0.first?.body } == ByteBuffer(bytes: [1, 2, 3])
        }
        await a.transport.shutdown()
        await b.transport.shutdown()
    }

    @Test("a client with a caller certificate connects; the node sees its name and role")
    func clientCertificate() async throws {
        let ca = try TestAuthority()
        let node = try await Endpoint.start("b") { $0.tls = try? ca.tls(node: "b") }
        let client = TCPTransport(
            configuration: .init(handshake: Endpoint.handshake, tls: try ca.tls(.client("script", role: .caller))),
            logger: Logger(label: "client"))
        client.setLocalIdentity(
            PeerIdentity(role: .client, nodeID: NodeID(unchecked: "cli"), incarnation: 0, listenAddress: ""))
        _ = try await client.connect(to: node.address, delegate: RecordingDelegate())
        try await eventually("the node knows the client's role") {
            node.delegate.established.withLock { $0.first?.certified } == .client("script", role: .caller)
        }
        await client.shutdown()
        await node.transport.shutdown()
    }

    @Test(
        "a client certificate is the credential: no secret needed over TLS; without TLS, or with a node's certificate, refused"
    )
    func certificateCredential() async throws {
        let ca = try TestAuthority()
        let node = try await Endpoint.start("b") { $0.tls = try? ca.tls(node: "b") }
        func client(_ tls: TransportTLS?) -> TCPTransport {
            let transport = TCPTransport(
                configuration: .init(
                    handshake: HandshakeConfiguration(clusterName: "c", secret: [], credential: .certificate), tls: tls),
                logger: Logger(label: "client"))
            transport.setLocalIdentity(
                PeerIdentity(role: .client, nodeID: NodeID(unchecked: "cli"), incarnation: 0, listenAddress: ""))
            return transport
        }
        let caller = client(try ca.tls(.client("script", role: .caller)))
        _ = try await caller.connect(to: node.address, delegate: RecordingDelegate())
        try await eventually("the node knows it as a caller by its certificate") {
            node.delegate.established.withLock { $0.first.map { $0.credential == .certificate && $0.isCallerOnly } }
                == true
        }
        let withNodeCertificate = client(try ca.tls(node: "n9"))
        let refused = await #expect(throws: TransportError.self) {
            _ = try await withNodeCertificate.connect(to: node.address, delegate: RecordingDelegate())
        }
        #expect(refused?.message.contains("only a client with a TLS client certificate") == true)
        let plainNode = try await Endpoint.start("p")
        await #expect(throws: TransportError.self, "no secret and no TLS: nothing proves who it is") {
            _ = try await client(nil).connect(to: plainNode.address, delegate: RecordingDelegate())
        }
        for transport in [caller, withNodeCertificate] { await transport.shutdown() }
        await plainNode.transport.shutdown()
        await node.transport.shutdown()
    }

    @Test("a peer whose certificate comes from another CA is refused on both sides, each logging it")
    func otherAuthority() async throws {
        let ca = try TestAuthority()
        let stranger = try TestAuthority(name: "another CA")
        let b = try await Endpoint.start("b") { $0.tls = try? ca.tls(node: "b") }
        let a = try await Endpoint.start("a") { $0.tls = try? stranger.tls(node: "a") }
        let error = await #expect(throws: TransportError.self) {
            _ = try await a.transport.connect(to: b.address, delegate: a.delegate)
        }
        #expect(error?.code == .handshakeRefused)
        #expect(error?.message.contains("not signed by this cluster's CA") == true, "\(String(describing: error))")
        try await eventually("b logs the refusal") { b.logged("TLS handshake failed", "127.0.0.1") }
        #expect(b.delegate.established.withLock { $0.isEmpty })
        await a.transport.shutdown()
        await b.transport.shutdown()
    }

    @Test("node c presenting node a's certificate is refused, whichever side it is on")
    func impersonation() async throws {
        let ca = try TestAuthority()
        let b = try await Endpoint.start("b") { $0.tls = try? ca.tls(node: "b") }
        let impostor = try await Endpoint.start("c") { $0.tls = try? ca.tls(node: "a") }
        // As the dialler: b refuses it.
        let error = await #expect(throws: TransportError.self) {
            _ = try await impostor.transport.connect(to: b.address, delegate: impostor.delegate)
        }
        #expect(error?.code == .handshakeRefused)
        #expect(error?.message.contains("claims to be node c, but its certificate is for node a") == true)
        try await eventually("b logs it") { b.logged("handshake refused", "its certificate is for node a") }
        // As the listener: the dialler refuses it.
        let back = await #expect(throws: TransportError.self) {
            _ = try await b.transport.connect(to: impostor.address, delegate: b.delegate)
        }
        #expect(back?.message.contains("claims to be node c, but its certificate is for node a") == true)
        #expect(b.delegate.established.withLock { $0.isEmpty })
        #expect(impostor.delegate.established.withLock { $0.isEmpty })
        await impostor.transport.shutdown()
        await b.transport.shutdown()
    }

    @Test("an expired certificate: a node refuses to load it, and a peer showing one is refused")
    func expired() async throws {
        let ca = try TestAuthority()
        let past = Date().addingTimeInterval(-3 * 86_400)
        let loadError = #expect(throws: TransportError.self) {
            _ = try ca.tls(.node("a"), issuedAt: past, validity: .seconds(86_400))
        }
        #expect(loadError?.code == .invalidConfiguration)
        #expect(loadError?.message.contains("expired") == true)
        // Loaded as of its valid time (a node whose clock is wrong, or that kept running), then shown.
        let stale = try ca.tls(.node("a"), issuedAt: past, validity: .seconds(86_400), now: past + 3600)
        let b = try await Endpoint.start("b") { $0.tls = try? ca.tls(node: "b") }
        let a = try await Endpoint.start("a") { $0.tls = stale }
        let error = await #expect(throws: TransportError.self) {
            _ = try await a.transport.connect(to: b.address, delegate: a.delegate)
        }
        #expect(error?.code == .handshakeRefused)
        #expect(error?.message.contains("certificate has expired") == true, "\(String(describing: error))")
        try await eventually("b logs the refusal") { b.logged("TLS handshake failed", "127.0.0.1") }
        await a.transport.shutdown()
        await b.transport.shutdown()
    }

    @Test(
        "a plain-text node meeting a TLS node is refused, and both say the cluster must be all TLS or all plain; a node's own dial is logged even right after a stranger's refusal of the same kind"
    )
    func plainAgainstTLS() async throws {
        let ca = try TestAuthority()
        let secure = try await Endpoint.start("b") {
            $0.tls = try? ca.tls(node: "b")
            $0.refusalLogInterval = .seconds(3600)  // refusals of connections to it: one line per reason
        }
        let plain = try await Endpoint.start("a")
        let error = await #expect(throws: TransportError.self) {
            _ = try await plain.transport.connect(to: secure.address, delegate: plain.delegate)
        }
        #expect(error?.code == .handshakeRefused)
        #expect(error?.message.contains("this node requires TLS") == true, "\(String(describing: error))")
        try await eventually("the TLS node logs it") {
            secure.logged("refusing a plain-text peer: this node requires TLS", "127.0.0.1")
        }
        // The other way round: a TLS node dialling a plain one.
        let back = await #expect(throws: TransportError.self) {
            _ = try await secure.transport.connect(to: plain.address, delegate: secure.delegate)
        }
        #expect(back?.code == .handshakeRefused)
        #expect(back?.message.contains("does not use TLS") == true, "\(String(describing: back))")
        #expect(back?.message.contains("this node runs without TLS") == true, "\(String(describing: back))")
        // Its own dial's refusal is logged although it logged a refusal of the same kind (wrong security) just now.
        try await eventually("the TLS node logs its own dial's refusal") {
            secure.logged("refusing a peer without TLS", "does not use TLS")
        }
        try await eventually("the plain node logs it") {
            plain.logged("refusing a TLS peer: this node runs without TLS", "127.0.0.1")
        }
        await plain.transport.shutdown()
        await secure.transport.shutdown()
    }

    @Test("after a reload, new connections use the new certificate; established ones stay up")
    func reload() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("plex-tls-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let first = CertificateFiles(directory: directory + "/first")
        let second = CertificateFiles(directory: directory + "/second")
        let firstCA = try first.initialize(name: "first")
        let secondCA = try second.initialize(name: "second")
        for (files, ca) in [(first, firstCA), (second, secondCA)] {
            for id in ["a", "b"] { try files.store(try ca.issue(for: .node(id))) }
        }
        let live = directory + "/live"
        try FileManager.default.createDirectory(atPath: live, withIntermediateDirectories: true)
        func install(_ files: CertificateFiles) throws {
            for (from, to) in [
                (files.authorityCertificate, "ca.pem"), (files.certificate(of: "b"), "b.pem"),
                (files.key(of: "b"), "b-key.pem"),
            ] {
                try? FileManager.default.removeItem(atPath: live + "/" + to)
                try FileManager.default.copyItem(atPath: from, toPath: live + "/" + to)
            }
        }
        try install(first)
        let tls = try TransportTLS(
            files: .init(authority: live + "/ca.pem", certificate: live + "/b.pem", key: live + "/b-key.pem"))
        let b = try await Endpoint.start("b") { $0.tls = tls }
        func node(_ files: CertificateFiles) throws -> TransportTLS {
            try TransportTLS(
                files: .init(
                    authority: files.authorityCertificate, certificate: files.certificate(of: "a"),
                    key: files.key(of: "a")))
        }
        let oldPeer = try await Endpoint.start("a") { $0.tls = try? node(first) }
        let established = try await oldPeer.transport.connect(to: b.address, delegate: oldPeer.delegate)

        try install(second)
        try tls.reload()
        let newPeer = try await Endpoint.start("a") { $0.tls = try? node(second) }
        let fresh = try await newPeer.transport.connect(to: b.address, delegate: newPeer.delegate)
        #expect(fresh.peer.certified == .node("b"))
        await #expect(throws: TransportError.self, "a new connection under the old CA is refused") {
            _ = try await oldPeer.transport.connect(to: b.address, delegate: oldPeer.delegate)
        }
        established.send(Wire.Frame(kind: .gossip, body: ByteBuffer(bytes: [7])))
        try await eventually("the connection made before the reload still carries frames") {
            b.delegate.frames.withLock { $0.contains { $0.body == ByteBuffer(bytes: [7]) } }
        }
        // A reload that fails changes nothing: missing files, or a certificate for another node.
        for suffix in [".pem", "-key.pem"] {
            try FileManager.default.removeItem(atPath: live + "/b" + suffix)
            try FileManager.default.copyItem(atPath: second.directory + "/a" + suffix, toPath: live + "/b" + suffix)
        }
        let other = #expect(throws: TransportError.self) { try tls.reload() }
        #expect(other?.message.contains("is for node a, but this end is node b") == true)
        #expect(tls.identity == .node("b"))
        try FileManager.default.removeItem(atPath: live + "/b-key.pem")
        #expect(throws: TransportError.self) { try tls.reload() }
        _ = try await newPeer.transport.connect(to: b.address, delegate: newPeer.delegate)
        for endpoint in [oldPeer, newPeer, b] { await endpoint.transport.shutdown() }
    }

    @Test("unusable TLS files are refused with a typed error naming the file and the fault")
    func badFiles() throws {
        let ca = try TestAuthority()
        let other = try TestAuthority(name: "other")
        let issued = try ca.authority.issue(for: .node("a"))
        let foreign = try other.authority.issue(for: .node("a"))
        let cases: [(String, () throws -> TransportTLS, String)] = [
            (
                "a key that is not the certificate's",
                {
                    try TransportTLS(
                        authorityPEM: ca.authority.certificatePEM, certificatePEM: issued.certificatePEM,
                        keyPEM: foreign.keyPEM)
                }, "is not the key of"
            ),
            (
                "a certificate another CA signed",
                {
                    try TransportTLS(
                        authorityPEM: ca.authority.certificatePEM, certificatePEM: foreign.certificatePEM,
                        keyPEM: foreign.keyPEM)
                }, "is not signed by"
            ),
            (
                "not PEM",
                {
                    try TransportTLS(
                        authorityPEM: "garbage", certificatePEM: issued.certificatePEM, keyPEM: issued.keyPEM)
                }, "is not a PEM certificate"
            ),
            (
                "a missing file",
                {
                    try TransportTLS(
                        files: .init(authority: "/nonexistent/ca.pem", certificate: "/nonexistent/a.pem", key: "/x"))
                }, "cannot read the CA certificate /nonexistent/ca.pem"
            ),
        ]
        for (name, make, expected) in cases {
            let error = #expect(throws: TransportError.self, "\(name)") { _ = try make() }
            #expect(error?.code == .invalidConfiguration, "\(name)")
            #expect(error?.message.contains(expected) == true, "\(name): \(String(describing: error))")
        }
    }
}
