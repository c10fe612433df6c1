internal import Crypto
public import Foundation
internal import SwiftASN1
public import X509

/// A cluster's certificate authority: the certificate every node and client certificate is checked against, and
/// the key that signs them (ECDSA P-256, so TLS 1.3 handshakes stay cheap).
///
/// ```swift
/// let ca = try CertificateAuthority.create(name: "orders")
/// let node = try ca.issue(for: .node("node-1"))
/// ```
public struct CertificateAuthority: Sendable {
    public let certificate: Certificate
    let privateKey: Certificate.PrivateKey

    /// A new authority whose certificate is valid from a minute ago for `validity`.
    /// - Throws: ``PlexCertificateError`` when the certificate cannot be made.
    public static func create(name: String, validity: Duration = .seconds(10 * 365 * 86_400), now: Date = Date())
        throws(PlexCertificateError) -> CertificateAuthority
    {
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let certificate: Certificate
        do {
            let subject = try DistinguishedName {
                OrganizationName("PlexSpaces")
                CommonName("\(name) cluster CA")
            }
            let publicKey = key.publicKey
            certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
                notValidBefore: now - 60, notValidAfter: now + validity.seconds, issuer: subject, subject: subject,
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                    Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                    SubjectKeyIdentifier(hash: publicKey)
                },
                issuerPrivateKey: key)
        } catch {
            throw PlexCertificateError("cannot make the CA certificate: \(error)")
        }
        return CertificateAuthority(certificate: certificate, privateKey: key)
    }

    /// The authority in PEM files (as ``write(to:)`` left them).
    /// - Throws: ``PlexCertificateError`` when a file is missing, does not decode, or the key is not the
    ///   certificate's.
    public init(certificatePEM: String, keyPEM: String) throws(PlexCertificateError) {
        do {
            certificate = try Certificate(pemEncoded: certificatePEM)
        } catch {
            throw PlexCertificateError("the CA certificate is not a PEM certificate: \(error)")
        }
        do {
            privateKey = try Certificate.PrivateKey(pemEncoded: keyPEM)
        } catch {
            throw PlexCertificateError("the CA key is not a PEM private key: \(error)")
        }
        guard privateKey.publicKey == certificate.publicKey else {
            throw PlexCertificateError("the CA key does not belong to the CA certificate")
        }
        guard (try? certificate.extensions.basicConstraints) == .isCertificateAuthority(maxPathLength: 0) else {
            throw PlexCertificateError("the CA certificate is not a certificate authority's")
        }
    }

    init(certificate: Certificate, privateKey: Certificate.PrivateKey) {
        self.certificate = certificate
        self.privateKey = privateKey
    }

    /// A certificate and new key for `identity`, signed by this authority, valid from a minute ago for `validity`
    /// (never beyond the authority's own end), usable as a TLS server and client certificate.
    /// - Throws: ``PlexCertificateError`` when the identity's name is not allowed or the certificate cannot be made.
    public func issue(
        for identity: PlexIdentity, validity: Duration = .seconds(365 * 86_400), now: Date = Date()
    ) throws(PlexCertificateError) -> IssuedCertificate {
        switch identity {
        case .node(let id): try PlexIdentity.validate(id, as: "node id")
        case .client(let name, _): try PlexIdentity.validate(name, as: "client name")
        }
        let key = Certificate.PrivateKey(P256.Signing.PrivateKey())
        let certificate: Certificate
        do {
            let publicKey = key.publicKey
            let authorityKey = try self.certificate.extensions.subjectKeyIdentifier?.keyIdentifier
            certificate = try Certificate(
                version: .v3, serialNumber: Certificate.SerialNumber(), publicKey: publicKey,
                notValidBefore: now - 60, notValidAfter: min(now + validity.seconds, self.certificate.notValidAfter),
                issuer: self.certificate.subject,
                subject: try DistinguishedName {
                    OrganizationName("PlexSpaces")
                    CommonName(identity.name)
                },
                signatureAlgorithm: .ecdsaWithSHA256,
                extensions: try Certificate.Extensions {
                    Critical(BasicConstraints.notCertificateAuthority)
                    Critical(KeyUsage(digitalSignature: true))
                    try ExtendedKeyUsage([.serverAuth, .clientAuth])
                    SubjectAlternativeNames(identity.alternativeNames)
                    SubjectKeyIdentifier(hash: publicKey)
                    if let authorityKey { AuthorityKeyIdentifier(keyIdentifier: authorityKey) }
                },
                issuerPrivateKey: privateKey)
        } catch {
            throw PlexCertificateError("cannot make the certificate for \(identity): \(error)")
        }
        return IssuedCertificate(identity: identity, certificate: certificate, privateKey: key)
    }

    /// The certificate in PEM.
    public var certificatePEM: String { (try? certificate.serializeAsPEM().pemString) ?? "" }
    /// The private key in PEM (PKCS #8).
    public var keyPEM: String { (try? privateKey.serializeAsPEM().pemString) ?? "" }
}

/// A certificate the cluster's authority issued, with its private key.
public struct IssuedCertificate: Sendable {
    public let identity: PlexIdentity
    public let certificate: Certificate
    let privateKey: Certificate.PrivateKey

    /// The certificate in PEM.
    public var certificatePEM: String { (try? certificate.serializeAsPEM().pemString) ?? "" }
    /// The private key in PEM (PKCS #8).
    public var keyPEM: String { (try? privateKey.serializeAsPEM().pemString) ?? "" }
}

extension Duration {
    /// Whole seconds, as `TimeInterval`.
    var seconds: TimeInterval { TimeInterval(components.seconds) }
}
