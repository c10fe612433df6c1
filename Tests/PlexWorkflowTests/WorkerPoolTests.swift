import PlexCore
import PlexSpaces
import PlexTestKit
import Testing

@testable import PlexWorkflow

/// A pooled activity that answers with the node it ran on; with input "block", its first attempt never ends.
struct WhereAmI: Activity {
    static let name = "where-am-i"
    static let placement = ActivityPlacement.workerPool
    static let retryPolicy = RetryPolicy(
        initialInterval: .milliseconds(100), maximumInterval: .milliseconds(200), maximumAttempts: 10,
        startToCloseTimeout: .seconds(5))
    let node: String
    let ledger: Counter

    func run(_ input: String, context: ActivityContext) async throws -> String {
        ledger.bump("ran/\(node)")
        ledger.bump("attempt/\(context.attempt)/\(node)")
        if input == "block" && context.attempt == 1 { try await Task.sleep(for: .seconds(60)) }
        if input == "typed" { throw ActorFailure(code: "out-of-paper", message: "no paper on \(node)") }
        return node
    }
}

/// Runs `count` pooled activities one after another and returns the nodes they ran on.
struct Spread: Workflow {
    static let typeName = "spread"
    struct Input: Codable, Sendable {
        var count: Int
        var input = "go"
    }

    func run(_ input: Input, context: WorkflowContext) async throws -> [String] {
        var nodes: [String] = []
        for _ in 0..<input.count { nodes.append(try await context.activity(WhereAmI.self, input.input)) }
        return nodes
    }
}

@Suite("Activities on a worker pool", .timeLimit(.minutes(2)))
struct WorkerPoolTests {
    let ledger = Counter()

    func install(on node: PlexNode) {
        let engine = WorkflowEngine(options: .init(resumeInterval: .milliseconds(300)))
        engine.register(Spread.self)
        engine.register(activity: WhereAmI(node: "\(node.nodeID)", ledger: ledger))
        engine.install(on: node)
    }

    @Test("a pooled activity's attempts spread over the nodes; its typed error reads as it would locally")
    func spread() async throws {
        try await withTestCluster(nodes: 3, transport: .inMemory, register: { install(on: $0) }) { cluster in
            let client = WorkflowClient(node: cluster.node(0))
            let nodes = try await client.start(Spread.self, id: "spread-1", input: .init(count: 12)).result()
            #expect(nodes.count == 12)
            #expect(Set(nodes).count >= 2, "attempts ran on several nodes: \(nodes)")

            let failing = try await client.start(
                Spread.self, id: "spread-typed", input: .init(count: 1, input: "typed"))
            do {
                _ = try await failing.result(timeout: .seconds(30))
                Issue.record("an activity that always fails fails the workflow")
            } catch let error as WorkflowError {
                #expect(error.code == .failed || error.code == .activityFailed)
                let history = try await failing.history()
                #expect(history.first?.attempts == 10)
                #expect(history.first?.lastFailure?.code == "out-of-paper")
            }
        }
    }

    @Test("an attempt whose worker node dies is retried on another node; the instance completes")
    func workerDies() async throws {
        try await withTestCluster(nodes: 3, transport: .loopbackTCP, register: { install(on: $0) }) { cluster in
            let caller = cluster.node(0)
            let victim = cluster.node(2).nodeID
            // An instance owned by the caller whose first attempt lands on the victim.
            var i = 0
            func owners(_ id: String) -> (NodeID?, NodeID?) {
                let attempt = ActivityContext(instanceID: id, position: 0, attempt: 1, name: WhereAmI.name)
                return (
                    caller.owner(of: ActorID(typeName: WorkflowInstance.typeName, key: id)),
                    caller.owner(
                        of: ActorID(typeName: ActivityWorker.typeName, key: ActivityWorker.key(attempt)),
                        placement: .failover)
                )
            }
            while owners("pool-\(i)") != (caller.nodeID, victim) { i += 1 }
            let handle = try await WorkflowClient(node: caller).start(
                Spread.self, id: "pool-\(i)", input: .init(count: 1, input: "block"))
            try await eventually("the first attempt runs on the victim") {
                ledger.count("attempt/1/\(victim)") == 1
            }
            await cluster.crash(2)
            let nodes = try await handle.result(timeout: .seconds(30))
            #expect(nodes.count == 1)
            #expect(nodes[0] != "\(victim)", "the retry ran on a live node")
            let history = try await handle.history()
            #expect((history.first?.attempts ?? 0) >= 2)
        }
    }
}
