import PlexCore
import PlexSpaces
import PlexTestKit
import Testing

@testable import PlexWorkflow

@Suite("Listing and purging workflow instances", .timeLimit(.minutes(2)))
struct ListAndPurgeTests {
    let ledger = Counter()

    @Test("list gathers every node's instances by type and status; purge forgets a finished one and frees its id")
    func listAndPurge() async throws {
        let engine = WorkflowEngine(options: .init(resumeInterval: .milliseconds(300)))
        engine.register(ShipOrder.self)
        engine.register(ShipChild.self)
        engine.register(activity: Reserve(ledger: ledger))
        engine.register(activity: Label(ledger: ledger, failures: 0))
        try await withTestCluster(nodes: 3, transport: .inMemory, register: { engine.install(on: $0) }) { cluster in
            let client = WorkflowClient(node: cluster.node(0))
            for i in 0..<6 {
                let handle = try await client.start(ShipOrder.self, id: "done-\(i)", input: .init(order: "d\(i)"))
                _ = try await handle.result(timeout: .seconds(10))
            }
            for i in 0..<4 {
                _ = try await client.start(ShipChild.self, id: "slow-\(i)", input: "slow-\(i)")
            }
            let other = WorkflowClient(node: cluster.node(2))
            try await eventually("every instance is listed with its status") {
                let completed = try await other.list(type: ShipOrder.typeName, status: .completed)
                let running = try await other.list(status: .running)
                return Set(completed.map(\.id)) == Set((0..<6).map { "done-\($0)" })
                    && Set(running.map(\.id)) == Set((0..<4).map { "slow-\($0)" })
            }
            #expect(try await other.list(limit: 3).count == 3)
            #expect(try await other.list(type: "no-such-type").isEmpty)
            let all = try await other.list()
            #expect(all.count == 10)
            #expect(all.map(\.startedAt) == all.map(\.startedAt).sorted(by: >), "newest first")

            do {
                try await client.purge(id: "slow-0")
                Issue.record("a running instance is not purged")
            } catch let error as WorkflowError { #expect(error.code == .invalidArgument) }
            do {
                try await client.purge(id: "never-started")
                Issue.record("purging an unknown id is refused")
            } catch let error as WorkflowError { #expect(error.code == .notFound) }

            try await client.purge(id: "done-0")
            #expect(try await client.describe(id: "done-0").status == .pending)
            try await eventually("the purged instance leaves the list") {
                try await !other.list(type: ShipOrder.typeName).contains { $0.id == "done-0" }
            }
            // The id can be started again, and runs anew.
            let again = try await client.start(ShipOrder.self, id: "done-0", input: .init(order: "again"))
            #expect(try await again.result(timeout: .seconds(10)) == "L-R-again")
            #expect(try await again.describe().continuedAsNew == 1, "a new run: its steps' keys are new")
            try await eventually("the new run is listed") {
                try await other.list(status: .completed).contains { $0.id == "done-0" }
            }
        }
    }
}

/// Logs through its context.
struct LogsHello: Workflow {
    static let typeName = "logs-hello"
    init() {}
    func run(_ input: String, context: WorkflowContext) async throws -> String {
        context.logger.info("hello from the workflow")
        return input
    }
}

@Suite("The workflow's logger", .timeLimit(.minutes(1)))
struct WorkflowLoggerTests {
    @Test("a workflow's log lines carry workflow.id, workflow.type and node.id")
    func metadata() async throws {
        let logs = LogCapture()
        let engine = WorkflowEngine(logger: logs.logger(label: "plex.workflow"))
        engine.register(LogsHello.self)
        try await withTestCluster(nodes: 1, transport: .inMemory, register: { engine.install(on: $0) }) { cluster in
            let handle = try await WorkflowClient(node: cluster.node(0)).start(LogsHello.self, id: "hi-1", input: "x")
            #expect(try await handle.result(timeout: .seconds(10)) == "x")
            let lines = logs.lines(containing: "hello from the workflow")
            #expect(lines.count == 1, "\(lines)")
            #expect(lines.first?.contains("workflow.id=hi-1") == true, "\(lines)")
            #expect(lines.first?.contains("workflow.type=logs-hello") == true, "\(lines)")
            #expect(lines.first?.contains("node.id=node-0") == true, "\(lines)")
        }
    }
}
