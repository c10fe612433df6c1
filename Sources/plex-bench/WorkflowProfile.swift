import ArgumentParser
import Foundation
import PlexSpaces

/// A fixed amount of workflow work for profilers (`valgrind --tool=callgrind`, `heaptrack`, `perf`): `count`
/// workflows of three no-op activities with 256 in flight, or `count` instances blocked on an hour's timer
/// (`--sleepers`), left unloaded. Ends the process without shutting the node down, so a heap profiler's
/// "leaked" figure is what the node held at the end.
struct WorkflowProfile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflow-profile", abstract: "A fixed workflow workload for profilers.")

    @Option var count = 20_000
    @Flag(help: "Start instances that sleep an hour (and unload) instead of three-step workflows.")
    var sleepers = false

    func run() async throws {
        let completions = Completions()
        let engine = WorkflowEngine(options: .init(onClose: { id, status in completions.closed(id, status) }))
        engine.register(ThreeSteps.self)
        engine.register(SleepsLong.self)
        let directory = temporaryDirectory("workflow-profile")
        let node = try await PlexNode.start(
            NodeConfiguration(dataDirectory: directory, secret: benchSecret), transport: .inMemory(InMemoryNetwork()),
            logger: quietLogger()
        ) { engine.install(on: $0) }
        let client = WorkflowClient(node: node)
        let clock = ContinuousClock()
        let start = clock.now
        let count = self.count
        let sleepers = self.sleepers
        try await withThrowingTaskGroup(of: Void.self) { group in
            for worker in 0..<256 {
                group.addTask {
                    for i in stride(from: worker, to: count, by: 256) {
                        if sleepers {
                            _ = try await client.start(SleepsLong.self, id: "sleeper-\(i)", input: i)
                        } else {
                            _ = try await client.start(ThreeSteps.self, id: "w-\(i)", input: i)
                            await completions.wait(for: "w-\(i)")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        if sleepers {
            while node.activationCount > 32 { try await Task.sleep(for: .milliseconds(100)) }
        }
        try await Task.sleep(for: .seconds(2))
        report("workflow_profile_activations", Double(node.activationCount), "activations")
        report("workflow_profile_seconds", Bench_seconds(clock.now - start), "s")
        report("workflow_profile_resident", Double(residentBytes()), "bytes")
        // What the journal did per workflow (commits are group commits, appended counts entries).
        let journal = try await node.journal.statistics()
        report("workflow_profile_commits_per_workflow", Double(journal.commits) / Double(count), "commits")
        report("workflow_profile_entries_per_workflow", Double(journal.appended) / Double(count), "entries")
        // No shutdown (a heap profiler's "leaked" figure is what the node held here), so no `defer` either.
        try? FileManager.default.removeItem(atPath: directory)
        Foundation.exit(0)
    }
}
