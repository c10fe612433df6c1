import Foundation
import PlexExamples
import PlexSpaces
import PlexTestKit
import Synchronization
import Testing

/// Real `plex node` processes on loopback: crash by `kill -9`, restart, wrong secrets, bad configs.
/// Enabled by `PLEX_INTEGRATION=1` and `PLEX_BIN` (scripts/test.sh sets both).
@Suite("Multi-process cluster", .serialized, .enabled(if: NodeProcess.binary != nil), .timeLimit(.minutes(3)))
struct ClusterIntegrationTests {
    static let secret = "integration-secret-0123456789"

    let binary = NodeProcess.binary ?? ""
    let directory = FileManager.default.temporaryDirectory.path + "/plex-it-\(UInt32.random(in: 0...UInt32.max))"

    func startNode(
        _ id: String, listen: String = "127.0.0.1:0", seeds: [String] = [], secret: String = secret,
        extra: [String] = []
    ) async throws -> (NodeProcess, NodeProcess.Ready) {
        var arguments =
            [
                "node", "--node-id", id, "--listen", listen, "--data-dir", "\(directory)/\(id)", "--cluster-name", "it",
                "--heartbeat-ms", "100", "--unreachable-after-ms", "800", "--log-level", "info",
            ] + extra
        for seed in seeds { arguments += ["--seed", seed] }
        let process = try NodeProcess.launch(binary, arguments, environment: ["PLEX_CLUSTER_SECRET": secret])
        return (process, try await process.waitUntilReady())
    }

    /// Runs `body`; if it throws, prints every process's stderr (their logs) before rethrowing.
    func dumpingLogs(_ processes: () -> [(String, NodeProcess)], _ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch {
            for (name, process) in processes() {
                print("---- \(name) (pid \(process.pid)) stderr ----\n\(process.standardError)")
            }
            throw error
        }
    }

    func client(_ address: String, secret: String = secret) async throws -> PlexClient {
        try await PlexClient.connect(
            to: PeerAddress(parsing: address)!, clusterName: "it", secret: Array(secret.utf8))
    }

    /// Waits until `client`'s node sees `count` members up.
    func waitUntilUp(_ count: Int, asSeenBy client: PlexClient) async throws {
        try await eventually("\(count) members up", within: .seconds(20)) {
            try await client.status().members.filter { $0.state == "up" }.count == count
        }
    }

    /// Keys of `Ledger` actors that `owner` owns in the ring n1, n2, n3.
    func ledgers(ownedBy owner: String, prefix: String, count: Int) throws -> [String] {
        let ring = try ["n1", "n2", "n3"].map { try NodeID($0) }
        return Array(
            (0..<1000).map { "\(prefix)\($0)" }.filter {
                Placement.owner(of: ActorID(typeName: Ledger.typeName, key: $0), among: ring)?.rawValue == owner
            }.prefix(count))
    }

    func increment(_ client: PlexClient, _ key: String) async throws -> Counter.Reply {
        try await client.ask(Counter.self, key: key, .increment, timeout: .seconds(3))
    }

    @Test("kill -9 of an actor's owner: calls fail fast with nodeUnavailable, no second activation, back after restart")
    func crashAndRestart() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (p1, r1) = try await startNode("n1")
        let (p2, r2) = try await startNode("n2", seeds: [r1.address])
        let (p3, r3) = try await startNode("n3", seeds: [r1.address])
        let processes = [p1, p2, p3]
        var restarted: NodeProcess?
        defer {
            for p in processes { p.kill9() }
            restarted?.kill9()
        }
        try await dumpingLogs({ [("n1", p1), ("n2", p2), ("n3", p3)] + (restarted.map { [("n3 again", $0)] } ?? []) }) {
            let c1 = try await client(r1.address)
            let c2 = try await self.client(r2.address)
            try await eventually("n1 sees three members up", within: .seconds(20)) {
                try await c1.status().members.filter { $0.state == "up" }.count == 3
            }
            let ring = try ["n1", "n2", "n3"].map { try NodeID($0) }
            let key = (0..<1000).map { "k\($0)" }.first {
                Placement.owner(of: ActorID(typeName: Counter.typeName, key: $0), among: ring)?.rawValue == "n3"
            }!
            #expect(try await increment(c1, key).node == "n3")
            #expect(try await increment(c2, key).count == 2)

            let before1 = try await c1.status().members.first { $0.nodeID == "n1" }!.activations
            let before2 = try await c2.status().members.first { $0.nodeID == "n2" }!.activations
            p3.kill9()
            #expect(try await p3.waitForExit() != 0)
            try await eventually("calls fail with nodeUnavailable", within: .seconds(10)) {
                do {
                    _ = try await increment(c1, key)
                    return false
                } catch let error as CallError {
                    return error.code == .nodeUnavailable
                }
            }
            let clock = ContinuousClock()
            for c in [c1, c2] {
                let started = clock.now
                let error = await #expect(throws: CallError.self) { try await increment(c, key) }
                #expect(error?.code == .nodeUnavailable)
                #expect(clock.now - started < .seconds(1), "fails fast, not at the 3 s deadline")
            }
            // No second activation: the survivors host nothing new.
            #expect(try await c1.status().members.first { $0.nodeID == "n1" }!.activations == before1)
            #expect(try await c2.status().members.first { $0.nodeID == "n2" }!.activations == before2)

            let (again, ready) = try await startNode("n3", listen: r3.address, seeds: [r1.address])
            restarted = again
            #expect(ready.incarnation == 2)
            try await eventually("calls succeed on the restarted owner", within: .seconds(15)) {
                (try? await increment(c1, key))?.node == "n3"
            }
            await c1.close()
            await c2.close()
        }
    }

    @Test("SIGTERM leaves gracefully; a node with another secret never joins; clients need the secret")
    func leaveAndSecrets() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (p1, r1) = try await startNode("n1")
        let (p2, r2) = try await startNode("n2", seeds: [r1.address])
        let (intruder, ri) = try await startNode("intruder", seeds: [r1.address], secret: "another-secret-0123456789")
        defer { for p in [p1, p2, intruder] { p.kill9() } }
        let c1 = try await client(r1.address)
        try await eventually("n1 sees n2", within: .seconds(20)) {
            try await c1.status().members.contains { $0.nodeID == "n2" && $0.state == "up" }
        }
        #expect(try await !c1.status().members.contains { $0.nodeID == "intruder" })
        // Both ends refuse with the typed error, each for its own reason: the intruder cannot verify n1's
        // proof (another secret), and n1 hears the intruder's refusal. Any other failure (a connect error,
        // a timeout, a handshake that succeeded) logs no such line.
        func refusal(_ process: NodeProcess, _ reason: String) -> Bool {
            process.standardError.split(separator: "\n").contains {
                $0.contains("handshake refused") && $0.contains("TransportError.handshakeRefused")
                    && $0.contains(reason)
            }
        }
        try await eventually("the intruder refuses n1's proof", within: .seconds(10)) {
            refusal(intruder, "n1 did not prove the cluster secret")
        }
        try await eventually("n1 logs the intruder's refusal", within: .seconds(10)) {
            refusal(p1, "peer refused: peer n1 did not prove the cluster secret")
        }
        let ci = try await client(ri.address, secret: "another-secret-0123456789")
        #expect(try await ci.status().members.map(\.nodeID) == ["intruder"])
        await ci.close()
        await #expect(throws: TransportError.self) {
            _ = try await client(r1.address, secret: "wrong-secret-0123456789")
        }

        p2.terminate()
        #expect(try await p2.waitForExit() == 0)
        try await eventually("n1 sees n2 leave (left: it had nothing to hand off)", within: .seconds(10)) {
            try await c1.status().members.first { $0.nodeID == "n2" }?.state == "left"
        }
        _ = r2
        await c1.close()
    }

    @Test("kill -9 of a durable actor's owner under load, three times, callers retrying with their keys: exactly once")
    func durableUnderLoad() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The owner files its journal's entries by actor after every few commits, so the kills land with
        // some entries filed, some only in the commit-order log, and filed rows not yet trimmed from it.
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let ownerConfig = "\(directory)/n3.toml"
        try "journal_unfiled_bytes = 2048\n".write(toFile: ownerConfig, atomically: true, encoding: .utf8)
        let (p1, r1) = try await startNode("n1")
        let (p2, r2) = try await startNode("n2", seeds: [r1.address])
        let (p3, r3) = try await startNode("n3", seeds: [r1.address], extra: ["--config", ownerConfig])
        let restarted = Box<NodeProcess?>(nil)
        defer {
            for p in [p1, p2, p3] { p.kill9() }
            restarted.value?.kill9()
        }
        try await dumpingLogs({
            [("n1", p1), ("n2", p2), ("n3", p3)] + (restarted.value.map { [("n3 again", $0)] } ?? [])
        }) {
            let client = try await client(r1.address)
            try await waitUntilUp(3, asSeenBy: client)
            let keys = try ledgers(ownedBy: "n3", prefix: "l", count: 4)
            let acknowledged = Counter_()
            let failures = Counter_()
            let workers = 8
            let depositsPerWorker = 40
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<workers {
                    group.addTask {
                        let ledger = keys[worker % keys.count]
                        for n in 0..<depositsPerWorker {
                            // Retry the same idempotency key until it is acknowledged.
                            let clock = ContinuousClock()
                            let deadline = clock.now + .seconds(60)
                            while true {
                                do {
                                    _ = try await client.ask(
                                        Ledger.self, key: ledger, .deposit(amount: 1), timeout: .seconds(2),
                                        idempotencyKey: "w\(worker)-\(n)")
                                    acknowledged.add()
                                    break
                                } catch {
                                    failures.add()
                                    guard clock.now < deadline else { throw error }
                                    try await Task.sleep(for: .milliseconds(20))  // pacing between retries
                                }
                            }
                        }
                    }
                }
                // Kill the owner three times while deposits flow, restarting it each time.
                var owner = p3
                for round in 1...3 {
                    let target = workers * depositsPerWorker * round / 5
                    try await eventually("\(target) deposits acknowledged", within: .seconds(60)) {
                        acknowledged.value >= target
                    }
                    let failuresBefore = failures.value
                    owner.kill9()
                    _ = try await owner.waitForExit()
                    try await eventually("callers see the owner gone") { failures.value > failuresBefore }
                    let (again, ready) = try await startNode(
                        "n3", listen: r3.address, seeds: [r1.address], extra: ["--config", ownerConfig])
                    restarted.value = again
                    owner = again
                    #expect(ready.incarnation == UInt64(round + 1))
                }
                try await group.waitForAll()
            }
            var total = 0
            for ledger in keys {
                total += try await client.ask(Ledger.self, key: ledger, .balance).balance
            }
            #expect(acknowledged.value == workers * depositsPerWorker)
            #expect(total == workers * depositsPerWorker, "every key applied exactly once")
            // No second activation: the ledgers never ran on n1 or n2.
            let status = try await client.status()
            #expect(status.members.first { $0.nodeID == "n1" }?.activations == 0)
            let c2 = try await self.client(r2.address)
            #expect(try await c2.status().members.first { $0.nodeID == "n2" }?.activations == 0)
            await c2.close()
            await client.close()
        }
    }

    @Test("plex node stop hands durable actors off; a rejoin takes them back; plex cluster remove says what is lost")
    func handoffAndRemove() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (p1, r1) = try await startNode("n1")
        let (p2, r2) = try await startNode("n2", seeds: [r1.address])
        let (p3, r3) = try await startNode("n3", seeds: [r1.address])
        let again = Box<NodeProcess?>(nil)
        defer {
            for p in [p1, p2, p3] { p.kill9() }
            again.value?.kill9()
        }
        let environment = ["PLEX_CLUSTER_SECRET": Self.secret]
        func plex(_ arguments: [String], node: String) async throws -> (Int32, String) {
            let process = try NodeProcess.launch(
                binary, arguments + ["--node", node, "--cluster-name", "it"], environment: environment)
            let status = try await process.waitForExit()
            return (status, process.standardOutput + process.standardError)
        }
        try await dumpingLogs({
            [("n1", p1), ("n2", p2), ("n3", p3)] + (again.value.map { [("n3 again", $0)] } ?? [])
        }) {
            let client = try await client(r1.address)
            try await waitUntilUp(3, asSeenBy: client)
            let ledgers = try ledgers(ownedBy: "n3", prefix: "h", count: 5)
            for (index, ledger) in ledgers.enumerated() {
                for n in 0...index {
                    let reply = try await client.ask(
                        Ledger.self, key: ledger, .deposit(amount: 10), idempotencyKey: "\(ledger)-\(n)")
                    #expect(reply.node == "n3")
                }
            }

            // Graceful stop: every ledger moves with its state and its idempotency keys.
            let (stopStatus, stopOutput) = try await plex(["node", "stop"], node: r3.address)
            #expect(stopStatus == 0, "\(stopOutput)")
            #expect(stopOutput.contains("\(ledgers.count) durable actors were handed to their new owners"))
            #expect(try await p3.waitForExit() == 0)
            for (index, ledger) in ledgers.enumerated() {
                let balance = try await client.ask(Ledger.self, key: ledger, .balance)
                #expect(balance.balance == 10 * (index + 1) && balance.node != "n3")
                let retried = try await client.ask(
                    Ledger.self, key: ledger, .deposit(amount: 10), idempotencyKey: "\(ledger)-0")
                #expect(retried.node == "n3" && retried.balance == 10, "answered from the moved record")
            }

            // n3 rejoins on its data directory and gets its ledgers back, state intact.
            let (restarted, ready) = try await startNode("n3", listen: r3.address, seeds: [r1.address])
            again.value = restarted
            #expect(ready.incarnation == 2)
            try await eventually("the ledgers run on n3 again", within: .seconds(20)) {
                let reply = try? await client.ask(Ledger.self, key: ledgers.first!, .balance)
                return reply?.node == "n3" && reply?.balance == 10
            }
            for (index, ledger) in ledgers.enumerated() {
                let reply = try await client.ask(
                    Ledger.self, key: ledger, .deposit(amount: 1), idempotencyKey: "\(ledger)-after")
                #expect(reply.node == "n3" && reply.balance == 10 * (index + 1) + 1)
            }

            // A member that is up is not removed; a dead one is, and the command says what that loses.
            let (refusedStatus, refusedOutput) = try await plex(["cluster", "remove", "n2"], node: r1.address)
            #expect(refusedStatus == 1 && refusedOutput.contains("refused"), "\(refusedOutput)")
            restarted.kill9()
            #expect(try await restarted.waitForExit() != 0)
            let client2 = try await self.client(r2.address)
            try await eventually("n1 and n2 see n3 unreachable (removal needs both)", within: .seconds(10)) {
                let first = try await client.status().members.first { $0.nodeID == "n3" }?.state
                let second = try await client2.status().members.first { $0.nodeID == "n3" }?.state
                return first == "unreachable" && second == "unreachable"
            }
            await client2.close()
            let (removeStatus, removeOutput) = try await plex(["cluster", "remove", "n3"], node: r1.address)
            #expect(removeStatus == 0, "\(removeOutput)")
            #expect(removeOutput.contains("removed n3") && removeOutput.contains("What is lost"))
            try await eventually("n3's ledgers are placed on the others", within: .seconds(10)) {
                (try? await client.ask(Ledger.self, key: ledgers.first!, .balance))?.node != nil
            }
            // As the command said: what the ledgers did on n3 since they moved back is lost; they come back
            // from the copy the survivor handed to n3 (before the "-after" deposit).
            for (index, ledger) in ledgers.enumerated() {
                let reply = try await client.ask(
                    Ledger.self, key: ledger, .deposit(amount: 5), idempotencyKey: "\(ledger)-gone")
                #expect(reply.balance == 10 * (index + 1) + 5, "\(ledger)")
            }

            // Removal is for good: n3 started again on its data directory is refused and exits 3, and then
            // refuses to start at all; what the survivors acknowledged stays the live history.
            let returning = try NodeProcess.launch(
                binary,
                [
                    "node", "--node-id", "n3", "--listen", r3.address, "--data-dir", "\(directory)/n3",
                    "--cluster-name", "it", "--heartbeat-ms", "100", "--unreachable-after-ms", "800", "--seed",
                    r1.address,
                ], environment: ["PLEX_CLUSTER_SECRET": Self.secret])
            again.value = returning
            #expect(try await returning.waitForExit(within: .seconds(30)) == 3)
            #expect(returning.standardError.contains("removed"), "\(returning.standardError)")
            let refused = try NodeProcess.launch(
                binary,
                [
                    "node", "--node-id", "n3", "--listen", r3.address, "--data-dir", "\(directory)/n3",
                    "--cluster-name", "it",
                ],
                environment: ["PLEX_CLUSTER_SECRET": Self.secret])
            #expect(try await refused.waitForExit(within: .seconds(30)) == 3)
            #expect(refused.standardError.contains("new node id"), "\(refused.standardError)")
            for (index, ledger) in ledgers.enumerated() {
                let reply = try await client.ask(Ledger.self, key: ledger, .balance)
                #expect(reply.balance == 10 * (index + 1) + 5 && reply.node != "n3", "\(ledger)")
            }
            _ = r2
            await client.close()
        }
    }

    @Test("plex call and plex cluster status talk to a running cluster")
    func cliCommands() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (p1, r1) = try await startNode("n1")
        let (p2, r2) = try await startNode("n2", seeds: [r1.address])
        defer { for p in [p1, p2] { p.kill9() } }
        let environment = ["PLEX_CLUSTER_SECRET": Self.secret]
        let common = ["--node", r2.address, "--cluster-name", "it"]
        try await eventually("both members up", within: .seconds(20)) {
            let status = try NodeProcess.launch(
                binary, ["cluster", "status", "--json"] + common, environment: environment)
            guard try await status.waitForExit() == 0 else { return false }
            let decoded = try JSONDecoder().decode(ClusterStatus.self, from: Data(status.standardOutput.utf8))
            return decoded.members.map(\.nodeID) == ["n1", "n2"] && decoded.members.allSatisfy { $0.state == "up" }
        }
        for expected in 1...2 {
            let call = try NodeProcess.launch(
                binary, ["call", "counter/cli", #"{"increment":{}}"#] + common, environment: environment)
            #expect(try await call.waitForExit() == 0)
            let reply = try JSONDecoder().decode(Counter.Reply.self, from: Data(call.standardOutput.utf8))
            #expect(reply.count == expected)
            #expect(["n1", "n2"].contains(reply.node))
        }
        let unknown = try NodeProcess.launch(binary, ["call", "nope/x", "{}"] + common, environment: environment)
        #expect(try await unknown.waitForExit() == 1)
        #expect(unknown.standardError.contains("unknownActorType"))
        // A request that works with the right secret fails with the wrong one, at the handshake, and runs nowhere.
        let wrongSecret = try NodeProcess.launch(
            binary, ["call", "counter/cli", #"{"increment":{}}"#] + common,
            environment: ["PLEX_CLUSTER_SECRET": "wrong-secret-0123456789"])
        #expect(try await wrongSecret.waitForExit() != 0)
        #expect(wrongSecret.standardError.contains("handshake"), "\(wrongSecret.standardError)")
        let after = try NodeProcess.launch(
            binary, ["call", "counter/cli", #"{"increment":{}}"#] + common, environment: environment)
        #expect(try await after.waitForExit() == 0)
        #expect(try JSONDecoder().decode(Counter.Reply.self, from: Data(after.standardOutput.utf8)).count == 3)
        _ = r2
    }

    @Test(
        "plex journal stats and inspect read a stopped node's journal (kept history, and pruned), not a running one's")
    func journalCommands() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (node, ready) = try await startNode("j1", extra: ["--keep-history"])
        defer { node.kill9() }
        let client = try await client(ready.address)
        for amount in [5, 7] { _ = try await client.ask(Ledger.self, key: "inspected", .deposit(amount: amount)) }
        await #expect(throws: CallError.self) {
            try await client.ask(Ledger.self, key: "inspected", .withdraw(amount: 1_000))
        }
        await client.close()
        let dataDir = "\(directory)/j1"
        // A running node holds its journal: the command says so (and waits for nothing).
        let running = try NodeProcess.launch(binary, ["journal", "stats", "--data-dir", dataDir])
        #expect(try await running.waitForExit() == 2)
        #expect(running.standardError.contains("stop the node"), "\(running.standardError)")
        node.terminate()
        #expect(try await node.waitForExit() == 0)

        let stats = try NodeProcess.launch(binary, ["journal", "stats", "--data-dir", dataDir])
        #expect(try await stats.waitForExit() == 0)
        #expect(stats.standardOutput.contains("entries     3"))
        #expect(stats.standardOutput.contains("actors      1"))
        let inspect = try NodeProcess.launch(binary, ["journal", "inspect", "ledger/inspected", "--data-dir", dataDir])
        #expect(try await inspect.waitForExit() == 0)
        let lines = inspect.standardOutput.split(separator: "\n")
        #expect(lines.filter { $0.contains("message") && $0.contains("replied") }.count == 2)
        #expect(lines.filter { $0.contains("message") && $0.contains("failed") }.count == 1)
        #expect(inspect.standardOutput.contains("3 entries"))
        let travel = try NodeProcess.launch(
            binary, ["journal", "inspect", "ledger/inspected", "--data-dir", dataDir, "--state-at", "1"])
        #expect(try await travel.waitForExit() == 0)
        #expect(travel.standardOutput.contains(#"at sequence 1: {"balance":5,"operations":1}"#))

        // Without --keep-history, the checkpoint written when the node stopped prunes what it covers, and
        // time travel before it says so.
        let (pruning, pruningReady) = try await startNode("j2")
        defer { pruning.kill9() }
        let second = try await self.client(pruningReady.address)
        for amount in [5, 7] { _ = try await second.ask(Ledger.self, key: "pruned", .deposit(amount: amount)) }
        await second.close()
        pruning.terminate()
        #expect(try await pruning.waitForExit() == 0)
        let pruned = try NodeProcess.launch(
            binary, ["journal", "inspect", "ledger/pruned", "--data-dir", "\(directory)/j2", "--state-at", "1"])
        #expect(try await pruned.waitForExit() != 0)
        #expect(pruned.standardError.contains("pruned"), "\(pruned.standardError)")

        let missing = try NodeProcess.launch(binary, ["journal", "stats", "--data-dir", "\(directory)/nowhere"])
        #expect(try await missing.waitForExit() == 2)
        #expect(missing.standardError.contains("no journal"))
    }

    @Test("a bad config file exits with code 2 and names the field")
    func badConfig() async throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = "\(directory)/bad.toml"
        try "data_dir = \"d\"\nlisten_port = 7\n".write(toFile: path, atomically: true, encoding: .utf8)
        let process = try NodeProcess.launch(
            binary, ["node", "--config", path], environment: ["PLEX_CLUSTER_SECRET": Self.secret])
        #expect(try await process.waitForExit() == 2)
        #expect(process.standardError.contains("listen_port"))
        try "data_dir = \"d\"\nlisten = \"nowhere\"\n".write(toFile: path, atomically: true, encoding: .utf8)
        let second = try NodeProcess.launch(
            binary, ["node", "--config", path], environment: ["PLEX_CLUSTER_SECRET": Self.secret])
        #expect(try await second.waitForExit() == 2)
        #expect(second.standardError.contains("listen"))
        try "data_dir = \"d\"\njournal_unfiled_bytes = -1\n".write(toFile: path, atomically: true, encoding: .utf8)
        let third = try NodeProcess.launch(
            binary, ["node", "--config", path], environment: ["PLEX_CLUSTER_SECRET": Self.secret])
        #expect(try await third.waitForExit() == 2)
        #expect(third.standardError.contains("journal_unfiled_bytes"))
        for value in ["0", "-5", "\"many\""] {
            try "data_dir = \"d\"\nmailbox_limit = \(value)\n".write(toFile: path, atomically: true, encoding: .utf8)
            let process = try NodeProcess.launch(
                binary, ["node", "--config", path], environment: ["PLEX_CLUSTER_SECRET": Self.secret])
            #expect(try await process.waitForExit() == 2, "mailbox_limit = \(value)")
            #expect(process.standardError.contains("mailbox_limit"), "\(process.standardError)")
        }
    }
}

/// A thread-safe counter for test bookkeeping.
final class Counter_: Sendable {
    private let storage = Mutex(0)
    func add() { storage.withLock { $0 += 1 } }
    var value: Int { storage.withLock { $0 } }
}

/// A mutable value shared with a `defer` and a closure in tests.
final class Box<Value: Sendable>: @unchecked Sendable {
    // Guarded by `lock`.
    private var stored: Value
    private let lock = NSLock()
    init(_ value: Value) { stored = value }
    var value: Value {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}
