public import Foundation
internal import NIOCore
internal import NIOSSL
public import PlexCertificates
internal import Synchronization
internal import X509

/// Mutual TLS for the cluster transport: this end's certificate and key, and the cluster's CA as the only
/// trust root.
///
/// Every connection runs TLS 1.3 with both sides presenting a certificate the CA signed; nothing else is
/// trusted (no system roots). Host names are not checked: a peer's certificate names the node id (or client)
/// it speaks for (see `PlexIdentity`), and the handshake refuses a peer whose claimed node id differs.
/// Load from files with ``init(files:now:)``; ``reload(now:)`` reads them again, and connections opened after
/// it use the new certificate (open ones keep theirs).
public final class TransportTLS: Sendable {
    /// Where the PEM files are.
    public struct Files: Sendable, Hashable {
        /// The cluster CA's certificate: the only trust root.
        public var authority: String
        /// This end's certificate, signed by the CA.
        public var certificate: String
        /// This end's private key.
        public var key: String

        /// Creates a file set.
        public init(authority: String, certificate: String, key: String) {
            self.authority = authority
            self.certificate = certificate
            self.key = key
        }
    }

    /// What one load produced.
    struct Material: Sendable {
        let server: NIOSSLContext
        let client: NIOSSLContext
        let identity: PlexIdentity
        let notValidAfter: Date
    }

    /// The files this was loaded from, if any.
    public let files: Files?
    private let material: Mutex<Material>

    /// Loads the CA, the certificate and the key from `files`.
    /// - Throws: ``TransportError`` with code ``TransportError/Code/invalidConfiguration`` naming the file and what
    ///   is wrong (unreadable, not PEM, a key that does not match, a certificate the CA did not sign, expired).
    public init(files: Files, now: Date = Date()) throws(TransportError) {
        self.files = files
        self.material = Mutex(try Self.load(files, now: now))
    }

    /// Uses PEM text given directly (an embedding application, tests).
    /// - Throws: ``TransportError`` as ``init(files:now:)``.
    public init(authorityPEM: String, certificatePEM: String, keyPEM: String, now: Date = Date())
        throws(TransportError)
    {
        self.files = nil
        self.material = Mutex(
            try Self.make(
                authority: (authorityPEM, "the CA certificate"), certificate: (certificatePEM, "the certificate"),
                key: (keyPEM, "the key"), now: now))
    }

    /// Reads the files again; new connections use what they hold now. On error nothing changes.
    /// - Throws: ``TransportError`` as ``init(files:now:)``, or when the new certificate speaks for another
    ///   identity than the loaded one; nothing to reload without files.
    public func reload(now: Date = Date()) throws(TransportError) {
        guard let files else {
            throw TransportError(.invalidConfiguration, "this TLS configuration was not loaded from files")
        }
        let fresh = try Self.load(files, now: now)
        try material.withLock { (current: inout Material) throws(TransportError) in
            // A node's peers check its node id against its certificate: a reload must not change who it is.
            guard fresh.identity == current.identity else {
                throw TransportError(
                    .invalidConfiguration,
                    "the reloaded certificate \(files.certificate) is for \(fresh.identity), but this end is "
                        + "\(current.identity); keeping the certificate loaded")
            }
            current = fresh
        }
    }

    /// Who this end's certificate speaks for.
    public var identity: PlexIdentity { material.withLock { $0.identity } }

    /// When this end's certificate expires.
    public var notValidAfter: Date { material.withLock { $0.notValidAfter } }

    var current: Material { material.withLock { $0 } }

    /// How long before its end a certificate is warned about: 14 days.
    public static let expiryWarningWindow: TimeInterval = 14 * 86_400

    /// A warning for the operator when this end's certificate expires within ``expiryWarningWindow`` (or has
    /// expired), else `nil`.
    public func expiryWarning(now: Date = Date()) -> String? {
        let (end, identity) = material.withLock { ($0.notValidAfter, $0.identity) }
        let left = end.timeIntervalSince(now)
        guard left < Self.expiryWarningWindow else { return nil }
        let renew = "issue a new one (plex certs issue) and send the process SIGHUP to load it"
        guard left > 0 else { return "the TLS certificate of \(identity) expired at \(end): \(renew)" }
        let days = Int(left / 86_400)
        return "the TLS certificate of \(identity) expires at \(end), in \(days) days: \(renew)"
    }

    private static func load(_ files: Files, now: Date) throws(TransportError) -> Material {
        func read(_ path: String, _ what: String) throws(TransportError) -> (String, String) {
            do {
                return (try String(contentsOfFile: path, encoding: .utf8), "\(what) \(path)")
            } catch {
                throw TransportError(
                    .invalidConfiguration, "cannot read \(what) \(path): \(error.localizedDescription)")
            }
        }
        return try make(
            authority: try read(files.authority, "the CA certificate"),
            certificate: try read(files.certificate, "the certificate"), key: try read(files.key, "the key"), now: now)
    }

    private static func make(
        authority: (pem: String, name: String), certificate: (pem: String, name: String),
        key: (pem: String, name: String), now: Date
    ) throws(TransportError) -> Material {
        func fail(_ message: String) -> TransportError { TransportError(.invalidConfiguration, message) }
        let parsedAuthority: Certificate
        let parsedCertificate: Certificate
        let parsedKey: Certificate.PrivateKey
        do { parsedAuthority = try Certificate(pemEncoded: authority.pem) } catch {
            throw fail("\(authority.name) is not a PEM certificate: \(error)")
        }
        do { parsedCertificate = try Certificate(pemEncoded: certificate.pem) } catch {
            throw fail("\(certificate.name) is not a PEM certificate: \(error)")
        }
        do { parsedKey = try Certificate.PrivateKey(pemEncoded: key.pem) } catch {
            throw fail("\(key.name) is not a PEM private key: \(error)")
        }
        guard parsedKey.publicKey == parsedCertificate.publicKey else {
            throw fail("\(key.name) is not the key of \(certificate.name)")
        }
        guard parsedCertificate.issuer == parsedAuthority.subject,
            parsedAuthority.publicKey.isValidSignature(parsedCertificate.signature, for: parsedCertificate)
        else {
            throw fail("\(certificate.name) is not signed by \(authority.name)")
        }
        guard now < parsedCertificate.notValidAfter else {
            throw fail("\(certificate.name) expired at \(parsedCertificate.notValidAfter)")
        }
        guard now >= parsedCertificate.notValidBefore else {
            throw fail("\(certificate.name) is not valid before \(parsedCertificate.notValidBefore)")
        }
        let identity: PlexIdentity
        do { identity = try PlexIdentity(certificate: parsedCertificate) } catch {
            throw fail("\(certificate.name): \(error)")
        }
        do {
            let trust = try NIOSSLCertificate(bytes: Array(authority.pem.utf8), format: .pem)
            let chain = try NIOSSLCertificate(bytes: Array(certificate.pem.utf8), format: .pem)
            let privateKey = try NIOSSLPrivateKey(bytes: Array(key.pem.utf8), format: .pem)
            func configure(_ configuration: inout TLSConfiguration) {
                configuration.minimumTLSVersion = .tlsv13
                configuration.trustRoots = .certificates([trust])
                configuration.certificateVerification = .noHostnameVerification
            }
            var server = TLSConfiguration.makeServerConfiguration(
                certificateChain: [.certificate(chain)], privateKey: .privateKey(privateKey))
            configure(&server)
            var client = TLSConfiguration.makeClientConfiguration()
            client.certificateChain = [.certificate(chain)]
            client.privateKey = .privateKey(privateKey)
            configure(&client)
            return Material(
                server: try NIOSSLContext(configuration: server), client: try NIOSSLContext(configuration: client),
                identity: identity, notValidAfter: parsedCertificate.notValidAfter)
        } catch {
            throw fail("cannot set up TLS with \(certificate.name): \(error)")
        }
    }
}

extension TransportTLS {
    /// Who the verified certificate of the peer on `channel` speaks for; on the channel's event loop, once
    /// TLS has finished its handshake.
    static func peerIdentity(on channel: any Channel) -> Result<PlexIdentity, TransportError> {
        guard let handler = try? channel.pipeline.syncOperations.handler(type: NIOSSLHandler.self),
            let certificate = handler.peerCertificate
        else {
            return .failure(TransportError(.handshakeRefused, "the peer showed no TLS certificate"))
        }
        do {
            return .success(try PlexIdentity(certificate: Certificate(derEncoded: certificate.toDERBytes())))
        } catch {
            return .failure(
                TransportError(.handshakeRefused, "the peer's certificate names no plex identity: \(error)"))
        }
    }
}

extension TransportTLS {
    /// What a failed TLS handshake means for a cluster, in words, followed by BoringSSL's own.
    static func explain(_ error: any Error) -> String {
        let raw = "\(error)"
        let meanings: [(String, String)] = [
            ("CERTIFICATE_VERIFY_FAILED", "the peer's certificate is not signed by this cluster's CA, or is expired"),
            ("ALERT_UNKNOWN_CA", "the peer does not trust the CA that signed this end's certificate"),
            ("ALERT_CERTIFICATE_EXPIRED", "the peer says this end's certificate has expired"),
            ("ALERT_BAD_CERTIFICATE", "the peer refused this end's certificate"),
            ("PEER_DID_NOT_RETURN_A_CERTIFICATE", "the peer showed no certificate"),
            ("ALERT_CERTIFICATE_REQUIRED", "the peer requires a certificate from this end"),
            ("ALERT_PROTOCOL_VERSION", "the peer does not speak TLS 1.3"),
            ("UNSUPPORTED_PROTOCOL", "the peer does not speak TLS 1.3"),
        ]
        guard let meaning = meanings.first(where: { raw.contains($0.0) })?.1 else { return raw }
        return "\(meaning) (\(raw))"
    }
}
