import Foundation
import PlexExamples
import PlexSpaces
import PlexTestKit
import Testing

/// Real `plex node` processes hosting the example workflows, killed with `kill -9` while workflows are in a
/// retry backoff, on a timer and waiting for an event. Enabled by `PLEX_INTEGRATION=1` and `PLEX_BIN`.
@Suite("Workflows across a kill -9", .serialized, .enabled(if: NodeProcess.binary != nil), .timeLimit(.minutes(3)))
struct WorkflowIntegrationTests {
    static let secret = "workflow-secret-0123456789"
    let binary = NodeProcess.binary ?? ""
    let directory = FileManager.default.temporaryDirectory.path + "/plex-wf-\(UInt32.random(in: 0...UInt32.max))"

    func startNode(listen: String = "127.0.0.1:0") async throws -> (NodeProcess, NodeProcess.Ready) {
        let arguments = [
            "node", "--node-id", "w1", "--listen", listen, "--data-dir", "\(directory)/w1", "--cluster-name", "wf",
            "--heartbeat-ms", "100", "--unreachable-after-ms", "800", "--log-level", "info",
        ]
        let process = try NodeProcess.launch(binary, arguments, environment: ["PLEX_CLUSTER_SECRET": Self.secret])
        return (process, try await process.waitUntilReady())
    }

    func connect(_ address: String) async throws -> PlexClient {
        try await PlexClient.connect(
            to: PeerAddress(parsing: address)!, clusterName: "wf", secret: Array(Self.secret.utf8))
    }

    /// The lines the `append-line` activity wrote, counted by instance and position.
    func lines(in file: String) -> [String: Int] {
        let text = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        var counts: [String: Int] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: " ")
            counts["\(fields[0]) \(fields[1])", default: 0] += 1
        }
        return counts
    }

    @Test("after kill -9 during a backoff, a timer and an event wait, every workflow completes once, right")
    func killDuringRetriesTimerAndEvent() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let file = "\(directory)/lines.txt"
        var (process, ready) = try await startNode()
        var second: NodeProcess?
        defer {
            process.kill9()
            second?.kill9()
        }
        do {
            let client = try await connect(ready.address)
            let workflows = WorkflowClient(client: client)
            let retrying = try await workflows.start(
                StepsWorkflow.self, id: "retrying",
                input: .init(file: file, steps: 4, pauseMilliseconds: 0, failFirstAttempts: 2))
            let sleeping = try await workflows.start(
                StepsWorkflow.self, id: "sleeping", input: .init(file: file, steps: 2, pauseMilliseconds: 3_000))
            let waiting = try await workflows.start(
                OrderWorkflow.self, id: "waiting", input: .init(order: "big", amount: 5_000))
            try await eventually("a retry is pending", within: .seconds(20)) {
                try await retrying.history().contains { $0.outcome == nil && $0.lastFailure != nil }
            }
            try await eventually("the timer is set", within: .seconds(20)) {
                try await sleeping.describe().currentStep?.contains("sleep") == true
            }
            try await eventually("the order waits for approval", within: .seconds(20)) {
                try await waiting.describe().currentStep?.contains("approval") == true
            }
            let before = ["retrying": try await retrying.history(), "sleeping": try await sleeping.history()]
            let timer = try #require(try await sleeping.history().first { $0.kind == .timer })
            await client.close()

            process.kill9()
            #expect(try await process.waitForExit() != 0)
            let (restarted, again) = try await startNode(listen: ready.address)
            second = restarted
            ready = again
            let client2 = try await connect(again.address)
            defer { Task { await client2.close() } }
            let workflows2 = WorkflowClient(client: client2)
            try await workflows2.handle(OrderWorkflow.self, id: "waiting").signal("approval", true)

            #expect(try await workflows2.handle(StepsWorkflow.self, id: "retrying").result(timeout: .seconds(60)) == 4)
            #expect(try await workflows2.handle(StepsWorkflow.self, id: "sleeping").result(timeout: .seconds(60)) == 2)
            let shipped = try await workflows2.handle(OrderWorkflow.self, id: "waiting").result(timeout: .seconds(60))
            #expect(shipped.hasPrefix("shipped big"))

            // Every step's line is there; a step whose completion was journaled before the kill never ran again
            // (its line is there once); only a step in flight at the kill may have run twice.
            let counts = lines(in: file)
            for position in 0..<4 { #expect((counts["retrying \(position)"] ?? 0) >= 1) }
            for position in [0, 2] { #expect((counts["sleeping \(position)"] ?? 0) >= 1) }
            var journaledBefore = 0
            for (instance, history) in before {
                for step in history where step.kind == .activity && step.isResolved {
                    journaledBefore += 1
                    #expect(counts["\(instance) \(step.position)"] == 1, "\(instance) step \(step.position) ran again")
                }
            }
            #expect(journaledBefore > 0, "some completions were journaled before the kill")
            for (key, count) in counts { #expect(count <= 2, "\(key) ran \(count) times") }
            #expect(
                counts.values.filter { $0 == 2 }.count <= 2, "at most the step in flight in each instance ran twice")

            // The timer kept its journaled due time and fired at or after it.
            let fired = try #require(
                try await workflows2.handle(StepsWorkflow.self, id: "sleeping").history().first { $0.kind == .timer })
            #expect(fired.dueAt == timer.dueAt)
            #expect(try #require(fired.completedAt) >= (timer.dueAt ?? 0))
        } catch {
            print("---- node stderr ----\n\(process.standardError)\n\(second?.standardError ?? "")")
            throw error
        }
    }

    /// Runs `plex workflow …` against `address`; returns the exit code, standard output and standard error.
    func cli(_ arguments: [String], _ address: String) async throws -> (code: Int32, out: String, err: String) {
        try await plex(["workflow"] + arguments, address)
    }

    /// Runs `plex …` against `address`.
    func plex(_ arguments: [String], _ address: String) async throws -> (code: Int32, out: String, err: String) {
        let process = try NodeProcess.launch(
            binary, arguments + ["--node", address, "--cluster-name", "wf"],
            environment: ["PLEX_CLUSTER_SECRET": Self.secret])
        let code = try await process.waitForExit()
        return (code, process.standardOutput, process.standardError)
    }

    @Test("plex workflow start, status, query, signal, result, list and purge drive an order from the command line")
    func commandLine() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let (process, ready) = try await startNode()
        defer { process.kill9() }
        let node = ready.address
        let start = try await cli(["start", "order", "o1", "--input", #"{"order":"o1","amount":1500}"#], node)
        #expect(start.code == 0, "\(start.err)")
        try await eventually("the order waits for approval", within: .seconds(20)) {
            try await cli(["status", "o1"], node).out.contains("approval")
        }
        let progress = try await cli(["query", "o1", "progress"], node)
        #expect(progress.out.trimmingCharacters(in: .whitespacesAndNewlines) == #""waiting for approval""#)
        let unknownQuery = try await cli(["query", "o1", "nope"], node)
        #expect(unknownQuery.code == 1)
        #expect(unknownQuery.err.contains("unknownQuery"))
        let running = try await cli(["purge", "o1"], node)
        #expect(running.code == 1, "a running instance is not purged")

        #expect(try await cli(["signal", "o1", "approval", "--payload", "true"], node).code == 0)
        let result = try await cli(["result", "o1", "--wait", "30"], node)
        #expect(result.code == 0)
        #expect(result.out.contains("shipped o1"))
        try await eventually("the order and its shipping child are listed as completed", within: .seconds(20)) {
            let listed = try await cli(["list", "--status", "completed", "--json"], node)
            let rows = try JSONSerialization.jsonObject(with: Data(listed.out.utf8)) as? [[String: Any]] ?? []
            return Set(rows.compactMap { $0["id"] as? String }) == ["o1", "o1-shipping"]
        }
        let history = try await cli(["history", "o1"], node)
        #expect(history.out.contains("child") && history.out.contains("o1-shipping"))

        let purged = try await cli(["purge", "--status", "completed", "--type", "order"], node)
        #expect(purged.out.contains("purged 1"), "\(purged.out) \(purged.err)")
        let gone = try await cli(["status", "o1"], node)
        #expect(gone.code == 1)
        #expect(gone.err.contains("notFound"))
        #expect(try await cli(["status", "o1-shipping"], node).code == 0, "only the order was purged")
        let bad = try await cli(["list", "--status", "sleeping"], node)
        #expect(bad.code != 0)
        #expect(bad.err.contains("unknown status"))
    }

    @Test("long commands show progress: a workflow result that waits, and a bulk call")
    func progress() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let (process, ready) = try await startNode()
        defer { process.kill9() }
        let node = ready.address
        #expect(try await cli(["start", "order", "p1", "--input", #"{"order":"p1","amount":1500}"#], node).code == 0)
        // The order waits for approval: `result` waits too, and says so on stderr while it does.
        let waiting = try NodeProcess.launch(
            binary,
            ["workflow", "result", "p1", "--wait", "30", "--progress", "--node", node, "--cluster-name", "wf"],
            environment: ["PLEX_CLUSTER_SECRET": Self.secret])
        defer { waiting.kill9() }
        try await eventually("result shows that it waits", within: .seconds(20)) {
            waiting.standardError.contains("waiting for p1: running")
        }
        #expect(try await cli(["signal", "p1", "approval", "--payload", "true"], node).code == 0)
        #expect(try await waiting.waitForExit() == 0, "\(waiting.standardError)")
        #expect(waiting.standardOutput.contains("shipped p1"), "the result alone is on stdout")
        #expect(!waiting.standardOutput.contains("waiting"))

        let bulk = try await plex(
            ["call", "counter/bulk-{n}", #"{"increment":{}}"#, "--repeat", "40", "--concurrency", "8", "--progress"],
            node)
        #expect(bulk.code == 0, "\(bulk.err)")
        #expect(bulk.out.contains("40 calls to counter/bulk-{n}: 40 ok, 0 failed"), "\(bulk.out)")
        #expect(bulk.out.contains("p50") && bulk.out.contains("last reply: {"), "\(bulk.out)")
        #expect(bulk.err.contains("40/40 calls, 0 failed"), "\(bulk.err)")
        let failing = try await plex(["call", "ledger/bulk", #"{"withdraw":{"amount":5}}"#, "--repeat", "5"], node)
        #expect(failing.code == 1)
        #expect(failing.err.contains("5 call(s) failed (5 remoteFailure)"), "\(failing.err)")
        let nan = try await plex(["call", "counter/x", "{}", "--timeout", "nan"], node)
        #expect(nan.code != 0 && nan.err.contains("--timeout must be"), "\(nan.err)")
        let wide = try await plex(["call", "counter/x", "{}", "--repeat", "5", "--concurrency", "100000"], node)
        #expect(wide.code != 0 && wide.err.contains("--concurrency must be"), "\(wide.err)")
        let refused = try await plex(["call", "counter/x", "{}", "--repeat", "0"], node)
        #expect(refused.code != 0 && refused.err.contains("--repeat must be at least 1"), "\(refused.err)")

        // A bulk call whose node dies stops, says how many calls it did not send, and exits 1.
        let long = try NodeProcess.launch(
            binary,
            [
                "call", "counter/long-{n}", #"{"increment":{}}"#, "--repeat", "5000000", "--progress", "--node", node,
                "--cluster-name", "wf",
            ],
            environment: ["PLEX_CLUSTER_SECRET": Self.secret])
        defer { long.kill9() }
        try await eventually("the bulk call is under way", within: .seconds(20)) {
            long.standardError.contains(" calls, 0 failed")
        }
        process.kill9()
        #expect(try await long.waitForExit() == 1)
        #expect(long.standardError.contains("the connection to the node was lost"), "\(long.standardError.suffix(500))")
    }
}
