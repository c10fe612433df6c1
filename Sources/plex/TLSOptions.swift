import ArgumentParser
import Foundation
import PlexSpaces

/// The cluster transport's mutual TLS files, from flags over a config file's `tls_ca_file`, `tls_cert_file`
/// and `tls_key_file` (see `plex certs`).
struct TLSOptions: ParsableArguments {
    @Option(
        name: .customLong("tls-ca"),
        help: "The cluster CA's PEM certificate: talk to the cluster over mutual TLS (with --tls-cert and --tls-key).")
    var authority: String?
    @Option(name: .customLong("tls-cert"), help: "This end's PEM certificate, signed by --tls-ca (plex certs issue).")
    var certificate: String?
    @Option(name: .customLong("tls-key"), help: "The PEM private key of --tls-cert.")
    var key: String?

    /// The files named by the flags, else by `file`; `nil` when neither names any.
    /// - Throws: ``ConfigurationFailure`` when only some are named.
    func files(_ file: ConfigFile?) throws -> TransportTLS.Files? {
        let named = [
            authority ?? file?.path("tls_ca_file"), certificate ?? file?.path("tls_cert_file"),
            key ?? file?.path("tls_key_file"),
        ]
        switch (named[0], named[1], named[2]) {
        case (nil, nil, nil): return nil
        case (let authority?, let certificate?, let key?):
            return TransportTLS.Files(authority: authority, certificate: certificate, key: key)
        default:
            throw ConfigurationFailure(
                message: "tls_ca_file, tls_cert_file and tls_key_file (--tls-ca, --tls-cert, --tls-key) go together")
        }
    }

    /// The TLS configuration the files hold, or `nil` without TLS.
    /// - Throws: ``ConfigurationFailure`` naming the file and what is wrong with it.
    func load(_ file: ConfigFile?) throws -> TransportTLS? {
        guard let files = try files(file) else { return nil }
        do {
            return try TransportTLS(files: files)
        } catch {
            throw ConfigurationFailure(message: "tls: \(error.message)")
        }
    }
}
