import Foundation
import PlexSpaces
import PlexTestKit

/// Real `plex node` processes on loopback for the scenario tests: the first node is the others' seed; each is
/// killed by its own PID and restarted on its address with its data directory.
final class ProcessCluster {
    let name: String
    let secret: String
    let binary: String
    let directory: String
    let ids: [String]
    private(set) var processes: [String: NodeProcess] = [:]
    private(set) var addresses: [String: String] = [:]
    /// Each node's HTTP gateway, `host:port`.
    private(set) var gateways: [String: String] = [:]
    /// Environment variables for the node processes, besides the cluster secret.
    var environment: [String: String] = [:]
    /// Flags every node gets besides the cluster's own.
    var arguments: [String] = []
    /// Processes killed and replaced, kept for their logs.
    private var earlier: [(String, NodeProcess)] = []

    init(name: String, nodes: Int, binary: String) {
        self.name = name
        self.secret = "\(name)-secret-0123456789"
        self.binary = binary
        self.directory =
            FileManager.default.temporaryDirectory.path + "/plex-\(name)-\(UInt32.random(in: 0...UInt32.max))"
        self.ids = (1...nodes).map { "n\($0)" }
    }

    /// Starts every node, the first as the seed, and waits until the first sees them all up.
    func start() async throws {
        for id in ids { try await start(id) }
        // Every node sees every member up (so each can route to every other).
        for id in ids {
            let client = try await client(id)
            defer { Task { await client.close() } }
            try await eventually("\(id) sees \(ids.count) members up", within: .seconds(20)) {
                try await client.status().members.filter { $0.state == "up" }.count == self.ids.count
            }
        }
    }

    /// Starts node `id` (again, on its earlier address, if it ran before).
    func start(_ id: String) async throws {
        var arguments = [
            "node", "--node-id", id, "--listen", addresses[id] ?? "127.0.0.1:0", "--data-dir", "\(directory)/\(id)",
            "--cluster-name", name, "--heartbeat-ms", "100", "--unreachable-after-ms", "800", "--log-level", "info",
        ]
        if let seed = ids.lazy.filter({ $0 != id }).compactMap({ self.addresses[$0] }).first {
            arguments += ["--seed", seed]
        }
        arguments += self.arguments
        let process = try NodeProcess.launch(
            binary, arguments, environment: environment.merging(["PLEX_CLUSTER_SECRET": secret]) { $1 })
        processes[id] = process
        let ready = try await process.waitUntilReady()
        addresses[id] = ready.address
        gateways[id] = ready.http
    }

    /// `kill -9` of node `id`'s process, and waits for it to exit.
    func kill9(_ id: String) async throws {
        guard let process = processes.removeValue(forKey: id) else { return }
        process.kill9()
        _ = try await process.waitForExit()
        earlier.append((id, process))
    }

    /// A client of node `id`.
    func client(_ id: String) async throws -> PlexClient {
        try await PlexClient.connect(
            to: PeerAddress(parsing: addresses[id]!)!, clusterName: name, secret: Array(secret.utf8))
    }

    /// The node among `ids` that owns `actor` when all are up.
    func owner(of actor: ActorID) throws -> String {
        let ring = try ids.map { try NodeID($0) }
        return Placement.owner(of: actor, among: ring)!.rawValue
    }

    /// Runs `body`; if it throws, prints every process's log before rethrowing. Kills every process and removes
    /// the data directories in any case.
    func run(_ body: () async throws -> Void) async throws {
        defer {
            for process in processes.values { process.kill9() }
            try? FileManager.default.removeItem(atPath: directory)
        }
        do {
            try await body()
        } catch {
            for (id, process) in earlier + processes.map({ ($0.key, $0.value) }) {
                print("---- \(id) (pid \(process.pid)) stderr ----\n\(process.standardError)")
            }
            throw error
        }
    }
}
