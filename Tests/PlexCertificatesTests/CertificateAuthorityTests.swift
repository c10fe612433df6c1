import Foundation
import NIOSSL
import PlexCertificates
import Testing
@_spi(FixedExpiryValidationTime) import X509

@Suite("Certificates: the cluster's authority, node and client certificates, their files")
struct CertificateAuthorityTests {
    func verify(_ leaf: Certificate, against root: Certificate, at time: Date = Date()) async -> Bool {
        var verifier = Verifier(rootCertificates: CertificateStore([root])) {
            RFC5280Policy(fixedExpiryValidationTime: time)
        }
        if case .validCertificate = await verifier.validate(leaf: leaf, intermediates: CertificateStore()) {
            return true
        }
        return false
    }

    @Test("a node's certificate is signed by its authority, names its node id, and no other authority accepts it")
    func nodeCertificate() async throws {
        let authority = try CertificateAuthority.create(name: "orders")
        let issued = try authority.issue(for: .node("node-1"))
        #expect(try PlexIdentity(certificate: issued.certificate) == .node("node-1"))
        #expect(await verify(issued.certificate, against: authority.certificate))
        let stranger = try CertificateAuthority.create(name: "orders")
        #expect(!(await verify(issued.certificate, against: stranger.certificate)), "another CA's trust")
        #expect(
            !(await verify(issued.certificate, against: authority.certificate, at: Date() + 400 * 86_400)),
            "expired after its year")
        let usages = try #require(try issued.certificate.extensions.extendedKeyUsage)
        #expect(usages.contains(.serverAuth) && usages.contains(.clientAuth), "a node both accepts and dials")
    }

    @Test("a client's certificate carries its name and role; bad names are refused")
    func clientCertificate() throws {
        let authority = try CertificateAuthority.create(name: "orders")
        for role in PlexIdentity.ClientRole.allCases {
            let issued = try authority.issue(for: .client("deploy-bot", role: role))
            #expect(try PlexIdentity(certificate: issued.certificate) == .client("deploy-bot", role: role))
        }
        for name in ["", "has space", "slash/y", String(repeating: "a", count: 129), "ünï"] {
            #expect(throws: PlexCertificateError.self) { try authority.issue(for: .node(name)) }
        }
        // An authority's own certificate speaks for no node or client.
        #expect(throws: PlexCertificateError.self) { try PlexIdentity(certificate: authority.certificate) }
    }

    @Test("a certificate never outlives its authority")
    func validityCapped() throws {
        let authority = try CertificateAuthority.create(name: "short", validity: .seconds(86_400))
        let issued = try authority.issue(for: .node("n"), validity: .seconds(365 * 86_400))
        #expect(issued.certificate.notValidAfter == authority.certificate.notValidAfter)
    }

    @Test("files: keys are 0600 from their creation, nothing is overwritten, the authority loads back")
    func files() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("plex-certs-\(UUID())").path
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let files = CertificateFiles(directory: directory)
        let authority = try files.initialize(name: "orders")
        #expect(throws: PlexCertificateError.self, "a second init") { try files.initialize(name: "orders") }
        let loaded = try files.authority()
        #expect(loaded.certificate == authority.certificate)
        let issued = try loaded.issue(for: .node("node-2"))
        try files.store(issued)
        #expect(throws: PlexCertificateError.self, "a second issue") { try files.store(issued) }
        for key in [files.authorityKey, files.key(of: "node-2")] {
            let mode = try FileManager.default.attributesOfItem(atPath: key)[.posixPermissions] as? Int
            #expect(mode == 0o600, "\(key)")
        }
        #expect(
            await verify(
                try Certificate(pemEncoded: String(contentsOfFile: files.certificate(of: "node-2"), encoding: .utf8)),
                against: authority.certificate))

        // A key that is not the certificate's is refused.
        let other = try CertificateAuthority.create(name: "other")
        #expect(throws: PlexCertificateError.self) {
            try CertificateAuthority(certificatePEM: authority.certificatePEM, keyPEM: other.keyPEM)
        }
        #expect(throws: PlexCertificateError.self) { try CertificateAuthority(certificatePEM: "junk", keyPEM: "junk") }
    }

    @Test("swift-nio-ssl takes the files as a TLS 1.3 identity and trust root")
    func usableForTLS() throws {
        let authority = try CertificateAuthority.create(name: "orders")
        let issued = try authority.issue(for: .node("node-1"))
        let certificate = try NIOSSLCertificate(bytes: Array(issued.certificatePEM.utf8), format: .pem)
        let key = try NIOSSLPrivateKey(bytes: Array(issued.keyPEM.utf8), format: .pem)
        let root = try NIOSSLCertificate(bytes: Array(authority.certificatePEM.utf8), format: .pem)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(certificate)], privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv13
        configuration.trustRoots = .certificates([root])
        configuration.certificateVerification = .noHostnameVerification
        _ = try NIOSSLContext(configuration: configuration)
    }
}
