import Foundation
import PlexExamples
import PlexJournal
import PlexSpaces
import Synchronization

/// Three no-op activities: the shape of the issue's throughput target.
struct ThreeSteps: Workflow {
    static let typeName = "bench-three-steps"
    func run(_ input: Int, context: WorkflowContext) async throws -> Int {
        var total = input
        for name in ["a", "b", "c"] { total += try await context.run(name) { _ in 1 } }
        return total
    }
}

/// Sleeps an hour: the shape of the memory figure (instances blocked on a timer).
struct SleepsLong: Workflow {
    static let typeName = "bench-sleeps-long"
    func run(_ input: Int, context: WorkflowContext) async throws -> Int {
        try await context.sleep(for: .seconds(3_600))
        return input
    }
}

/// Runs `input` quick steps, then waits for an event: an instance with a long history, for the recovery figure.
struct LongHistory: Workflow {
    static let typeName = "bench-long-history"
    func run(_ input: Int, context: WorkflowContext) async throws -> Int {
        let done = WorkflowVariable(0)
        context.onQuery("done") { done.value }
        for step in 0..<input {
            _ = try await context.run("step") { _ in step }
            done.value = step + 1
        }
        _ = try await context.waitForEvent("finish", as: Bool.self)
        return input
    }
}

/// Waits for instances to close, whether the close comes before or after the wait.
///
/// One lock over both tables: with one each, a close could find no waiter and then record itself after a wait
/// had registered and looked for it (a lost wake-up that hung a run once its finish no longer ran in a task of
/// its own).
final class Completions: Sendable {
    private struct State {
        var waiters: [String: CheckedContinuation<Void, Never>] = [:]
        var closed: Set<String> = []
    }

    private let state = Mutex(State())

    func closed(_ id: String, _ status: WorkflowStatus) {
        let waiter = state.withLock { state in
            guard let waiter = state.waiters.removeValue(forKey: id) else {
                state.closed.insert(id)
                return nil as CheckedContinuation<Void, Never>?
            }
            return waiter
        }
        waiter?.resume()
    }

    func wait(for id: String) async {
        await withCheckedContinuation { continuation in
            let done = state.withLock { state in
                if state.closed.remove(id) != nil { return true }
                state.waiters[id] = continuation
                return false
            }
            if done { continuation.resume() }
        }
    }
}

extension All {
    /// Workflows of three no-op activities on one node and on three (in-memory network, synchronous=FULL):
    /// completed instances per second with 256 in flight, start-to-completion latency, one at a time; and the
    /// resident memory of 10,000 instances blocked on a timer.
    func workflows(window: Duration) async throws {
        for nodes in [1, 3] {
            var rates: [Double] = []
            var p50s: [Double] = []
            var p99s: [Double] = []
            var singles: [Double] = []
            for run in 0..<runs {
                let completions = Completions()
                let engine = WorkflowEngine(options: .init(onClose: { id, status in completions.closed(id, status) }))
                engine.register(ThreeSteps.self)
                let network = InMemoryNetwork()
                var started: [PlexNode] = []
                defer {
                    for node in started {
                        try? FileManager.default.removeItem(atPath: node.configuration.dataDirectory)
                    }
                }
                for index in 0..<nodes {
                    var configuration = NodeConfiguration(
                        nodeID: try NodeID("w\(index)"), dataDirectory: temporaryDirectory("workflows-\(run)-\(index)"),
                        secret: benchSecret)
                    configuration.listenAddress = PeerAddress(host: "w\(index)", port: 1)
                    if index > 0 { configuration.seeds = [started[0].address] }
                    started.append(
                        try await PlexNode.start(configuration, transport: .inMemory(network), logger: quietLogger()) {
                            engine.install(on: $0)
                        })
                }
                let members = started
                while !members.allSatisfy({ $0.connectedMembers.count == nodes - 1 }) {
                    try await Task.sleep(for: .milliseconds(20))
                }
                let clients = members.map { WorkflowClient(node: $0) }
                let clock = ContinuousClock()
                let latencies = LatencyBox()
                let rate = try await throughput(callers: 256, duration: window, checkEvery: 1) { caller, n in
                    let id = "r\(run)-c\(caller)-\(n)"
                    let t0 = clock.now
                    _ = try await clients[(caller + n) % nodes].start(ThreeSteps.self, id: id, input: n)
                    await completions.wait(for: id)
                    latencies.add(Bench_seconds(clock.now - t0) * 1e6)
                }
                rates.append(rate)
                p50s.append(latencies.percentile(0.5))
                p99s.append(latencies.percentile(0.99))
                var serial = 0
                singles.append(
                    try await medianLatency(of: 200) {
                        serial += 1
                        let id = "single-\(run)-\(serial)"
                        _ = try await clients[serial % nodes].start(ThreeSteps.self, id: id, input: 0)
                        await completions.wait(for: id)
                    })
                for node in members { await node.shutdown() }
            }
            let prefix = nodes == 1 ? "workflow_3_activities" : "workflow_3_activities_3_nodes"
            report("\(prefix)_256_in_flight", median(rates), "workflows/s")
            report("\(prefix)_p50", median(p50s), "us")
            report("\(prefix)_p99", median(p99s), "us")
            report("\(prefix)_single_p50", median(singles), "us")
        }
        try await timerBlockedMemory()
        try await workflowRecovery()
    }

    /// An instance with 10,000 completed steps (each journaled on its own): the time from a node's restart to its
    /// code having caught up (a query answered), and the time to rebuild its state from its checkpoint against
    /// replaying every journaled message.
    func workflowRecovery() async throws {
        let steps = 10_000
        let directory = temporaryDirectory("workflow-recovery")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let engine = WorkflowEngine(options: .init(batchWindow: .zero))
        engine.register(LongHistory.self)
        var configuration = NodeConfiguration(dataDirectory: directory, secret: benchSecret)
        configuration.journal.keepHistory = true
        let network = InMemoryNetwork()
        func start() async throws -> PlexNode {
            try await PlexNode.start(configuration, transport: .inMemory(network), logger: quietLogger()) {
                engine.install(on: $0)
            }
        }
        var node = try await start()
        let handle = try await WorkflowClient(node: node).start(LongHistory.self, id: "long", input: steps)
        while try await handle.query("done", as: Int.self, timeout: .seconds(30)) < steps {
            try await Task.sleep(for: .milliseconds(50))
        }
        await node.shutdown()
        var restarts: [Double] = []
        for _ in 0..<runs {
            let clock = ContinuousClock()
            let t0 = clock.now
            node = try await start()
            let caughtUp = try await WorkflowClient(node: node).handle(LongHistory.self, id: "long")
                .query("done", as: Int.self, timeout: .seconds(60))
            restarts.append(Bench_seconds(clock.now - t0) * 1e3)
            precondition(caughtUp == steps, "the replayed code reports \(caughtUp) steps")
            await node.shutdown()
        }
        let journal = try await Journal.open(path: "\(directory)/journal.sqlite", configuration: configuration.journal)
        guard let checkpoint = try await WorkflowInspector.checkpointSequence(of: "long", in: journal) else {
            fatalError("the instance has no checkpoint")
        }
        var fromCheckpoint: [Double] = []
        var fullReplay: [Double] = []
        var replayed: UInt64 = 0
        for _ in 0..<runs {
            let clock = ContinuousClock()
            var t0 = clock.now
            let latest = try await WorkflowInspector.record(of: "long", in: journal)
            fromCheckpoint.append(Bench_seconds(clock.now - t0) * 1e3)
            precondition(latest.record.steps.count == steps + 1, "\(latest.record.steps.count) steps recovered")
            t0 = clock.now
            // Just before the checkpoint: every message from the first one is replayed.
            let early = try await WorkflowInspector.record(of: "long", at: checkpoint - 1, in: journal)
            fullReplay.append(Bench_seconds(clock.now - t0) * 1e3)
            replayed = early.sequence
        }
        await journal.close()
        report("workflow_10k_steps_restart_to_caught_up", median(restarts), "ms")
        report("workflow_10k_steps_state_from_checkpoint", median(fromCheckpoint), "ms")
        report("workflow_10k_steps_state_full_replay_\(replayed)_messages", median(fullReplay), "ms")
    }

    /// Resident bytes per instance of 10,000 blocked on an hour's timer: kept in memory (their code suspended),
    /// and unloaded (the default: each waits as a journaled reminder).
    func timerBlockedMemory() async throws {
        for unload in [false, true] {
            let directory = temporaryDirectory("workflow-memory")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let engine = WorkflowEngine(options: .init(unloadAfter: unload ? .seconds(1) : nil))
            engine.register(SleepsLong.self)
            let node = try await PlexNode.start(
                NodeConfiguration(dataDirectory: directory, secret: benchSecret),
                transport: .inMemory(InMemoryNetwork()), logger: quietLogger()
            ) { engine.install(on: $0) }
            let client = WorkflowClient(node: node)
            let count = 10_000
            let before = residentBytes()
            let activationsBefore = node.activationCount
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<64 {
                    group.addTask {
                        for i in stride(from: worker, to: count, by: 64) {
                            _ = try await client.start(SleepsLong.self, id: "sleeper-\(i)", input: i)
                        }
                    }
                }
                try await group.waitForAll()
            }
            if unload {
                // Every instance has journaled its timer and unloaded (the 16 index shards stay active).
                while node.activationCount > activationsBefore + 32 {
                    try await Task.sleep(for: .milliseconds(100))
                }
            } else {
                // Every instance has journaled its timer (so its code is suspended on it).
                for i in stride(from: 0, to: count, by: 97) {
                    while try await client.describe(id: "sleeper-\(i)").nextDueAt == nil {
                        try await Task.sleep(for: .milliseconds(10))
                    }
                }
            }
            let after = residentBytes()
            report(
                "workflow_timer_blocked_bytes_each_\(unload ? "unloaded" : "in_memory")",
                Double(after - before) / Double(count), "bytes")
            await node.shutdown()
        }
    }
}
