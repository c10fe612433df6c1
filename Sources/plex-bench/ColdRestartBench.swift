import Foundation
import PlexExamples
import PlexSpaces
import PlexTestKit

extension All {
    /// A cold restart of a 3-node TCP cluster with the default timing (heartbeat 250 ms, unreachable after
    /// 2 s, join timeout 3 s), every node listing all three as seeds, as `cluster/local/` does: 1,000 durable
    /// ledgers get a deposit each, all three nodes stop as `kill -9` would (journals abandoned), all three
    /// start again at once on their data directories, and the clock runs until every ledger answers with its
    /// balance through the first node.
    func coldRestart() async throws {
        var times: [Double] = []
        for run in 0..<runs {
            let root = temporaryDirectory("cold-\(run)")
            defer { try? FileManager.default.removeItem(atPath: root) }
            let ports = freeLoopbackPorts(3)
            let seeds = ports.map { PeerAddress(host: "127.0.0.1", port: $0) }
            let configurations = try (0..<3).map { index in
                NodeConfiguration(
                    nodeID: try NodeID("node-\(index + 1)"), listenAddress: seeds[index], seeds: seeds,
                    dataDirectory: "\(root)/node-\(index + 1)", clusterName: "cold", secret: benchSecret)
            }
            func startAll() async throws -> [PlexNode] {
                try await withThrowingTaskGroup(of: (Int, PlexNode).self) { group in
                    for (index, configuration) in configurations.enumerated() {
                        group.addTask {
                            (
                                index,
                                try await PlexNode.start(configuration, logger: quietLogger()) { $0.registerExamples() }
                            )
                        }
                    }
                    var nodes: [Int: PlexNode] = [:]
                    for try await (index, node) in group { nodes[index] = node }
                    return (0..<3).map { nodes[$0]! }
                }
            }
            var nodes = try await startAll()
            let keys = (0..<1000).map { "acct-\($0)" }
            try await eventually("the cluster formed", within: .seconds(60)) {
                nodes.allSatisfy { node in node.members.filter { $0.status == .up && $0.reachable }.count == 3 }
            }
            for key in keys { _ = try await nodes[0].actor(Ledger.self, key: key).ask(.deposit(amount: 7)) }
            for node in nodes { await node.halt() }
            let clock = ContinuousClock()
            let started = clock.now
            nodes = try await startAll()
            var waiting = Set(keys)
            while !waiting.isEmpty {
                for key in waiting {
                    let balance = try? await nodes[0].actor(Ledger.self, key: key).ask(.balance, timeout: .seconds(1))
                    if let balance {
                        precondition(balance.balance == 7, "\(key) lost its deposit: \(balance)")
                        waiting.remove(key)
                    }
                }
                if !waiting.isEmpty { try await Task.sleep(for: .milliseconds(10)) }
            }
            times.append(Bench_seconds(clock.now - started))
            for node in nodes { await node.shutdown() }
        }
        report("cold_restart_3_nodes_1000_ledgers_all_answer", median(times), "s")
    }
}
