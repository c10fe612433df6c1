import Foundation
import PlexExamples
import PlexSpaces
import PlexTestKit
import Testing

/// The cluster outlives its processes: real `plex node` processes, every one listing all three as seeds (as in
/// cluster/local/), all killed with `kill -9` and started again one at a time.
@Suite("Multi-process cold restart", .serialized, .enabled(if: NodeProcess.binary != nil), .timeLimit(.minutes(3)))
struct ColdRestartIntegrationTests {
    static let secret = "integration-secret-0123456789"
    let binary = NodeProcess.binary ?? ""
    let directory = FileManager.default.temporaryDirectory.path + "/plex-cold-\(UInt32.random(in: 0...UInt32.max))"

    func start(_ id: String, _ addresses: [String: String]) throws -> NodeProcess {
        var arguments = [
            "node", "--node-id", id, "--listen", addresses[id]!, "--data-dir", "\(directory)/\(id)",
            "--cluster-name", "cold", "--heartbeat-ms", "100", "--unreachable-after-ms", "800", "--log-level", "info",
        ]
        for seed in ["n1", "n2", "n3"] { arguments += ["--seed", addresses[seed]!] }
        return try NodeProcess.launch(binary, arguments, environment: ["PLEX_CLUSTER_SECRET": Self.secret])
    }

    func client(_ address: String) async throws -> PlexClient {
        try await PlexClient.connect(
            to: PeerAddress(parsing: address)!, clusterName: "cold", secret: Array(Self.secret.utf8))
    }

    @Test(
        "all nodes killed, then started one at a time: a node never runs an actor it does not own, and every acknowledged deposit is there when the owner is back"
    )
    func killEverythingAndRestartOneByOne() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let ports = freeLoopbackPorts(3)
        let addresses = Dictionary(uniqueKeysWithValues: zip(["n1", "n2", "n3"], ports.map { "127.0.0.1:\($0)" }))
        var processes: [String: NodeProcess] = [:]
        var everything: [(String, NodeProcess)] = []
        defer { for (_, process) in everything { process.kill9() } }
        func launch(_ id: String) throws -> NodeProcess {
            let process = try start(id, addresses)
            processes[id] = process
            everything.append((id, process))
            return process
        }
        do {
            // All three at once, as a service manager starts them: one cluster, founded by the first seed.
            let first = try ["n1", "n2", "n3"].map { try launch($0) }
            var clusterIDs: Set<String> = []
            for process in first {
                _ = try await process.waitUntilReady()
            }
            let c3 = try await client(addresses["n3"]!)
            try await eventually("one cluster of three", within: .seconds(20)) {
                try await c3.status().members.filter { $0.state == "up" }.count == 3
            }
            for id in ["n1", "n2", "n3"] {
                let c = try await client(addresses[id]!)
                clusterIDs.insert(try await c.status().clusterID)
                await c.close()
            }
            #expect(clusterIDs.count == 1 && !clusterIDs.contains(""))
            let ring = try ["n1", "n2", "n3"].map { try NodeID($0) }
            let key = (0..<1000).map { "acct-\($0)" }.first {
                Placement.owner(of: ActorID(typeName: Ledger.typeName, key: $0), among: ring)?.rawValue == "n1"
            }!
            for n in 1...2 {
                let reply = try await c3.ask(Ledger.self, key: key, .deposit(amount: 100), idempotencyKey: "d\(n)")
                #expect(reply.node == "n1")
            }
            await c3.close()

            for id in ["n1", "n2", "n3"] { processes[id]!.kill9() }
            for id in ["n1", "n2", "n3"] { #expect(try await processes[id]!.waitForExit() != 0) }

            // n3 alone: it keeps the ring, so the ledger's owner is unreachable, not started here from nothing.
            _ = try await launch("n3").waitUntilReady()
            let lone = try await client(addresses["n3"]!)
            let status = try await lone.status()
            #expect(status.membership == "joined")
            #expect(status.members.count == 3)
            #expect(clusterIDs.contains(status.clusterID))
            let error = await #expect(throws: CallError.self) {
                try await lone.ask(
                    Ledger.self, key: key, .deposit(amount: 1), timeout: .seconds(2), idempotencyKey: "lone")
            }
            #expect(error?.code == .nodeUnavailable)
            // n2, then the owner n1 (the first seed, last): the balance is all there.
            _ = try await launch("n2").waitUntilReady()
            _ = try await launch("n1").waitUntilReady()
            try await eventually("the ledger answers again on its owner", within: .seconds(20)) {
                (try? await lone.ask(Ledger.self, key: key, .balance, timeout: .seconds(2)))?.node == "n1"
            }
            let reply = try await lone.ask(Ledger.self, key: key, .deposit(amount: 1), idempotencyKey: "lone")
            #expect(reply.balance == 201)
            #expect(reply.node == "n1")
            for id in ["n1", "n2"] {
                let c = try await client(addresses[id]!)
                #expect(try await c.status().clusterID == status.clusterID)
                await c.close()
            }
            await lone.close()
        } catch {
            for (name, process) in everything {
                print("---- \(name) (pid \(process.pid)) stderr ----\n\(process.standardError)")
            }
            throw error
        }
    }
}
