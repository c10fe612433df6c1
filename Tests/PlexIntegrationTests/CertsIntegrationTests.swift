import Foundation
import PlexTestKit
import Testing

/// `plex certs` as an operator runs it: one command makes the authority, one a node's certificate, one a
/// client's; keys are 0600; nothing is overwritten; a bad name or a missing authority exits 2 with one line.
@Suite("plex certs", .serialized, .enabled(if: NodeProcess.binary != nil), .timeLimit(.minutes(2)))
struct CertsIntegrationTests {
    let binary = NodeProcess.binary ?? ""
    let directory = FileManager.default.temporaryDirectory.path + "/plex-certs-\(UInt32.random(in: 0...UInt32.max))"

    func plex(_ arguments: [String]) async throws -> (code: Int32, out: String, err: String) {
        let process = try NodeProcess.launch(binary, arguments)
        let code = try await process.waitForExit()
        return (code, process.standardOutput, process.standardError)
    }

    func mode(_ path: String) throws -> Int? {
        try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
    }

    @Test("init, issue, client and show; keys 0600; no overwrite; bad input exits 2 with one clear line")
    func certs() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ca = directory + "/ca"
        let initialized = try await plex(["certs", "init", "--out", ca, "--name", "orders"])
        #expect(initialized.code == 0, "\(initialized.err)")
        let node = try await plex(["certs", "issue", "node-1", "--ca", ca])
        #expect(node.code == 0, "\(node.err)")
        let client = try await plex(["certs", "client", "deploy", "--role", "caller", "--ca", ca, "--out", directory])
        #expect(client.code == 0, "\(client.err)")
        for key in ["\(ca)/ca-key.pem", "\(ca)/node-1-key.pem", "\(directory)/deploy-key.pem"] {
            #expect(try mode(key) == 0o600, "\(key)")
            let text = try String(contentsOfFile: key, encoding: .utf8)
            #expect(text.contains("PRIVATE KEY"))
            for output in [initialized, node, client] {
                #expect(!output.out.contains(text) && !output.err.contains(text), "a key is never printed")
            }
        }
        let shown = try await plex(["certs", "show", "\(ca)/node-1.pem"])
        #expect(shown.code == 0)
        #expect(shown.out.contains("identity    node node-1"), "\(shown.out)")
        #expect(shown.out.contains("orders cluster CA"))
        let shownClient = try await plex(["certs", "show", "\(directory)/deploy.pem"])
        #expect(shownClient.out.contains("client deploy (caller)"), "\(shownClient.out)")

        let before = try String(contentsOfFile: "\(ca)/node-1.pem", encoding: .utf8)
        for (arguments, words) in [
            (["certs", "issue", "node-1", "--ca", ca], "exists already"),
            (["certs", "init", "--out", ca], "exists already"),
            (["certs", "issue", "bad id", "--ca", ca], "must be 1 to 128"),
            (["certs", "issue", "node-2", "--ca", directory + "/nowhere"], "cannot read"),
            (["certs", "show", "\(ca)/ca-key.pem"], "not a PEM certificate"),
        ] {
            let failed = try await plex(arguments)
            #expect(failed.code == 2, "\(arguments)")
            #expect(failed.err.contains(words), "\(arguments): \(failed.err)")
            #expect(failed.err.split(separator: "\n").count == 1, "one line: \(failed.err)")
        }
        #expect(try String(contentsOfFile: "\(ca)/node-1.pem", encoding: .utf8) == before, "nothing overwritten")
        let badRole = try await plex(["certs", "client", "x", "--role", "root", "--ca", ca])
        #expect(badRole.code != 0)
    }
}
