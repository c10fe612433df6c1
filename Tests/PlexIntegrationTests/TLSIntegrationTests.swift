import Foundation
import PlexExamples
import PlexSpaces
import PlexTestKit
import Testing

/// A cluster of real `plex node` processes over mutual TLS, set up the way an operator does it: `plex certs`,
/// then `--tls-ca/--tls-cert/--tls-key`. Clients with a caller certificate call actors and read the status and
/// may not stop a node; a plain client is refused with a clear error; a node killed with `kill -9` comes back
/// with every acknowledged increment; `SIGHUP` reloads a node's certificate.
@Suite(
    "Multi-process cluster over mutual TLS", .serialized, .enabled(if: NodeProcess.binary != nil),
    .timeLimit(.minutes(3)))
struct TLSIntegrationTests {
    static let secret = "integration-secret-0123456789"
    let binary = NodeProcess.binary ?? ""
    let directory = FileManager.default.temporaryDirectory.path + "/plex-tls-\(UInt32.random(in: 0...UInt32.max))"
    var ca: String { directory + "/ca" }

    /// Runs `plex`; a client with a client certificate needs no secret, so the secret is only given on request.
    func plex(_ arguments: [String], secret: Bool = false) async throws -> (code: Int32, out: String, err: String) {
        let process = try NodeProcess.launch(
            binary, arguments, environment: secret ? ["PLEX_CLUSTER_SECRET": Self.secret] : [:])
        let code = try await process.waitForExit()
        return (code, process.standardOutput, process.standardError)
    }

    func tlsFlags(_ name: String) -> [String] {
        ["--tls-ca", "\(ca)/ca.pem", "--tls-cert", "\(ca)/\(name).pem", "--tls-key", "\(ca)/\(name)-key.pem"]
    }

    func start(_ id: String, _ addresses: [String: String]) throws -> NodeProcess {
        var arguments = [
            "node", "--node-id", id, "--listen", addresses[id]!, "--data-dir", "\(directory)/\(id)",
            "--cluster-name", "secure", "--heartbeat-ms", "100", "--unreachable-after-ms", "1500", "--no-http",
        ]
        arguments += tlsFlags(id)
        for seed in ["n1", "n2", "n3"] { arguments += ["--seed", addresses[seed]!] }
        return try NodeProcess.launch(binary, arguments, environment: ["PLEX_CLUSTER_SECRET": Self.secret])
    }

    func client(_ address: String, as name: String) async throws -> PlexClient {
        let tls = try TransportTLS(
            files: .init(
                authority: "\(ca)/ca.pem", certificate: "\(ca)/\(name).pem", key: "\(ca)/\(name)-key.pem"))
        return try await PlexClient.connect(
            to: PeerAddress(parsing: address)!, clusterName: "secure", secret: Array(Self.secret.utf8), tls: tls)
    }

    @Test(
        "TLS cluster: callers call and read, may not stop a node; plain clients are refused; kill -9 loses nothing; SIGHUP reloads"
    )
    func secureCluster() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for arguments in [
            ["certs", "init", "--out", ca], ["certs", "issue", "n1", "--ca", ca], ["certs", "issue", "n2", "--ca", ca],
            ["certs", "issue", "n3", "--ca", ca], ["certs", "client", "script", "--role", "caller", "--ca", ca],
            ["certs", "client", "ops", "--role", "admin", "--ca", ca],
        ] {
            let made = try await plex(arguments)
            #expect(made.code == 0, "\(arguments): \(made.err)")
        }
        let ports = freeLoopbackPorts(3)
        let addresses = Dictionary(uniqueKeysWithValues: zip(["n1", "n2", "n3"], ports.map { "127.0.0.1:\($0)" }))
        var processes: [String: NodeProcess] = [:]
        var everything: [NodeProcess] = []
        defer { for process in everything { process.kill9() } }
        for id in ["n1", "n2", "n3"] {
            let process = try start(id, addresses)
            processes[id] = process
            everything.append(process)
        }
        for process in processes.values { _ = try await process.waitUntilReady() }

        // The CLI with a caller certificate (and no secret) reads the status.
        try await eventually("three members up, seen through the CLI over TLS", within: .seconds(20)) {
            let status = try await plex(
                ["cluster", "status", "--node", addresses["n1"]!, "--cluster-name", "secure", "--json"]
                    + tlsFlags("script"))
            return status.code == 0 && status.out.components(separatedBy: "\"state\":\"up\"").count == 4
        }
        // A caller stops no node: a typed refusal, logged by the node with the client's name.
        let refused = try await plex(
            ["node", "stop", "--node", addresses["n3"]!, "--cluster-name", "secure"] + tlsFlags("script"))
        #expect(refused.code != 0)
        #expect(refused.err.contains("permissionDenied") || refused.err.contains("caller role"), "\(refused.err)")
        try await eventually("n3 logs the refusal with the client's name") {
            processes["n3"]!.standardError.contains("refusing an admin request")
                && processes["n3"]!.standardError.contains("client script (caller)")
        }
        #expect(processes["n3"]!.isRunning)

        // A client without TLS is refused, saying why.
        await #expect(throws: TransportError.self) {
            _ = try await PlexClient.connect(
                to: PeerAddress(parsing: addresses["n1"]!)!, clusterName: "secure", secret: Array(Self.secret.utf8))
        }
        try await eventually("n1 logs the plain-text peer") {
            processes["n1"]!.standardError.contains("refusing a plain-text peer")
        }

        // Acknowledged increments survive kill -9 of their owner.
        let caller = try await client(addresses["n1"]!, as: "script")
        var acknowledged: [String: Int] = [:]
        for index in 0..<30 {
            let key = "k\(index % 10)"
            _ = try await caller.ask(DurableCounter.self, key: key, .increment(by: 1))
            acknowledged[key, default: 0] += 1
        }
        let victim = "n2"
        processes[victim]!.kill9()
        _ = try await processes[victim]!.waitForExit()
        let restarted = try start(victim, addresses)
        processes[victim] = restarted
        everything.append(restarted)
        _ = try await restarted.waitUntilReady()
        try await eventually("every acknowledged increment is there", within: .seconds(30)) {
            for (key, count) in acknowledged {
                let reply = try await caller.ask(DurableCounter.self, key: key, .get)
                guard reply.value == count else { return false }
            }
            return true
        }
        await caller.close()

        // SIGHUP: n1 reloads its files (here a new certificate for the same node id); new connections work.
        let renewed = directory + "/renewed"
        let issued = try await plex(["certs", "issue", "n1", "--ca", ca, "--out", renewed])
        #expect(issued.code == 0, "\(issued.err)")
        for suffix in [".pem", "-key.pem"] {
            try FileManager.default.removeItem(atPath: "\(ca)/n1\(suffix)")
            try FileManager.default.copyItem(atPath: "\(renewed)/n1\(suffix)", toPath: "\(ca)/n1\(suffix)")
        }
        processes["n1"]!.hangUp()
        try await eventually("n1 reloads its certificate") {
            processes["n1"]!.standardError.contains("reloaded the TLS certificate files")
        }
        let again = try await client(addresses["n1"]!, as: "script")
        #expect(try await again.status().members.count == 3)
        await again.close()

        // An admin certificate stops a node.
        let stopped = try await plex(
            ["node", "stop", "--node", addresses["n3"]!, "--cluster-name", "secure", "--timeout", "30"]
                + tlsFlags("ops"))
        #expect(stopped.code == 0, "\(stopped.err)")
        #expect(try await processes["n3"]!.waitForExit() == 0)
    }
}
