import ArgumentParser
import Foundation
import PlexCertificates
import X509

struct CertsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Make the cluster's certificate authority and its nodes' and clients' certificates.",
        discussion: """
            Files go into one directory: ca.pem and ca-key.pem for the authority, NAME.pem and NAME-key.pem for each
            node or client. Keys are written with mode 0600 and never printed; nothing is overwritten.
            """,
        subcommands: [Init.self, Issue.self, Client.self, Show.self])

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a certificate authority (ca.pem, ca-key.pem) for a cluster.")
        @Option(name: .long, help: "The directory to create it in.")
        var out: String
        @Option(name: .long, help: "The cluster's name, for the authority's subject.")
        var name: String = "plex"

        func run() throws {
            let files = CertificateFiles(directory: out)
            let authority = try exitingOnCertificateError { try files.initialize(name: name) }
            print("created \(files.authorityCertificate) and its key \(files.authorityKey) (mode 0600)")
            print("valid until \(authority.certificate.notValidAfter)")
        }
    }

    struct Issue: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a node's certificate (NODE-ID.pem, NODE-ID-key.pem), its node id in the certificate.")
        @Argument(help: "The node's id, as its node_id setting says.")
        var nodeID: String
        @OptionGroup var options: IssueOptions

        func run() throws {
            try options.issue(.node(nodeID))
        }
    }

    struct Client: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a client's certificate (NAME.pem, NAME-key.pem) with its role.")
        @Argument(help: "The client's name.")
        var name: String
        @Option(
            name: .long,
            help: "caller (call actors, run workflows, read status) or admin (also stop and remove nodes).",
            transform: { text in
                guard let role = PlexIdentity.ClientRole(rawValue: text) else {
                    throw ValidationError("--role must be caller or admin, not '\(text)'")
                }
                return role
            })
        var role: PlexIdentity.ClientRole
        @OptionGroup var options: IssueOptions

        func run() throws {
            try options.issue(.client(name, role: role))
        }
    }

    struct IssueOptions: ParsableArguments {
        @Option(name: .long, help: "The directory holding ca.pem and ca-key.pem.")
        var ca: String
        @Option(name: .long, help: "Where to write the certificate and key (default: the CA's directory).")
        var out: String?
        @Option(name: .long, help: "Days the certificate is valid (at most until the authority's own end).")
        var days: Int = 365

        func validate() throws {
            guard (1...36_500).contains(days) else { throw ValidationError("--days must be in 1...36500") }
        }

        func issue(_ identity: PlexIdentity) throws {
            let authority = try exitingOnCertificateError { try CertificateFiles(directory: ca).authority() }
            let issued = try exitingOnCertificateError {
                try authority.issue(for: identity, validity: .seconds(days * 86_400))
            }
            let files = CertificateFiles(directory: out ?? ca)
            try exitingOnCertificateError { try files.store(issued) }
            let name = identity.name
            print(
                "issued \(files.certificate(of: name)) and its key \(files.key(of: name)) (mode 0600) for \(identity)")
            print("valid until \(issued.certificate.notValidAfter)")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a certificate's identity, issuer and validity.")
        @Argument(help: "A PEM certificate file.")
        var file: String

        func run() throws {
            let certificate = try exitingOnCertificateError { () throws -> Certificate in
                let text: String
                do {
                    text = try String(contentsOfFile: file, encoding: .utf8)
                } catch {
                    throw PlexCertificateError("cannot read \(file): \(error.localizedDescription)")
                }
                do {
                    return try Certificate(pemEncoded: text)
                } catch {
                    throw PlexCertificateError("\(file) is not a PEM certificate: \(error)")
                }
            }
            let identity =
                (try? PlexIdentity(certificate: certificate)).map(\.description) ?? "none (not a plex node or client)"
            print("identity    \(identity)")
            print("subject     \(certificate.subject)")
            print("issuer      \(certificate.issuer)")
            print("not before  \(certificate.notValidBefore)")
            print("not after   \(certificate.notValidAfter)")
            let days = Int(certificate.notValidAfter.timeIntervalSinceNow / 86_400)
            print(days >= 0 ? "expires in  \(days) days" : "expired     \(-days) days ago")
        }
    }
}

/// Runs `body`; a certificate error prints its message and exits with code 2.
func exitingOnCertificateError<T>(_ body: () throws -> T) throws -> T {
    do {
        return try body()
    } catch let error as PlexCertificateError {
        FileHandle.standardError.write(Data("plex: certificate error: \(error.message)\n".utf8))
        throw ExitCode(2)
    }
}
