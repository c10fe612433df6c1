internal import Foundation

/// Where `plex certs` keeps a cluster's certificates: `ca.pem` and `ca-key.pem` for the authority,
/// `NAME.pem` and `NAME-key.pem` for each node or client. Keys are written with mode 0600; nothing is ever
/// overwritten (a second `init` or `issue` for the same name fails and leaves the files as they were).
public struct CertificateFiles: Sendable {
    public let directory: String

    public init(directory: String) {
        self.directory = directory
    }

    public var authorityCertificate: String { path("ca.pem") }
    public var authorityKey: String { path("ca-key.pem") }
    public func certificate(of name: String) -> String { path("\(name).pem") }
    public func key(of name: String) -> String { path("\(name)-key.pem") }

    private func path(_ file: String) -> String { (directory as NSString).appendingPathComponent(file) }

    /// Creates the directory (mode 0700 when new) and a new authority in it.
    /// - Throws: ``PlexCertificateError`` when either file exists already or cannot be written.
    @discardableResult
    public func initialize(name: String) throws(PlexCertificateError) -> CertificateAuthority {
        try Self.createDirectory(directory)
        try Self.refuseExisting([authorityCertificate, authorityKey])
        let authority = try CertificateAuthority.create(name: name)
        try Self.write(authority.keyPEM, to: authorityKey, mode: 0o600)
        try Self.write(authority.certificatePEM, to: authorityCertificate, mode: 0o644)
        return authority
    }

    /// The authority kept here.
    /// - Throws: ``PlexCertificateError`` when its files are missing or do not decode.
    public func authority() throws(PlexCertificateError) -> CertificateAuthority {
        try CertificateAuthority(
            certificatePEM: try Self.read(authorityCertificate), keyPEM: try Self.read(authorityKey))
    }

    /// Writes `issued` as `NAME.pem` and `NAME-key.pem` here (creating the directory).
    /// - Throws: ``PlexCertificateError`` when either file exists already or cannot be written.
    public func store(_ issued: IssuedCertificate) throws(PlexCertificateError) {
        let name = issued.identity.name
        try Self.createDirectory(directory)
        try Self.refuseExisting([certificate(of: name), key(of: name)])
        try Self.write(issued.keyPEM, to: key(of: name), mode: 0o600)
        try Self.write(issued.certificatePEM, to: certificate(of: name), mode: 0o644)
    }

    static func createDirectory(_ directory: String) throws(PlexCertificateError) {
        do {
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        } catch {
            throw PlexCertificateError("cannot create \(directory): \(error.localizedDescription)")
        }
    }

    static func refuseExisting(_ paths: [String]) throws(PlexCertificateError) {
        for path in paths where FileManager.default.fileExists(atPath: path) {
            throw PlexCertificateError("\(path) exists already; remove it first to replace it")
        }
    }

    /// Writes `text` to a new file `path` with `mode` from its creation on (no moment with wider permissions).
    static func write(_ text: String, to path: String, mode: mode_t) throws(PlexCertificateError) {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)
        guard descriptor >= 0 else {
            throw PlexCertificateError("cannot create \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(descriptor) }
        let bytes = Array(text.utf8)
        var written = 0
        while written < bytes.count {
            let result = bytes[written...].withUnsafeBytes { Foundation.write(descriptor, $0.baseAddress, $0.count) }
            guard result > 0 else {
                throw PlexCertificateError("cannot write \(path): \(String(cString: strerror(errno)))")
            }
            written += result
        }
        guard fsync(descriptor) == 0 else {
            throw PlexCertificateError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
    }

    static func read(_ path: String) throws(PlexCertificateError) -> String {
        do {
            return try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw PlexCertificateError("cannot read \(path): \(error.localizedDescription)")
        }
    }
}
