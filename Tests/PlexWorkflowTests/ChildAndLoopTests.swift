import PlexCore
import PlexSpaces
import PlexTestKit
import Synchronization
import Testing

@testable import PlexWorkflow

/// Ships an order as a child workflow: reserve, then print a label.
struct ShipChild: Workflow {
    static let typeName = "ship-child"
    func run(_ order: String, context: WorkflowContext) async throws -> String {
        let reservation = try await context.activity(Reserve.self, order)
        if order.hasPrefix("bad") { throw WorkflowError.nonRetryable("no stock for \(order)") }
        if order.hasPrefix("slow") { _ = try await context.waitForEvent("go", as: Bool.self) }
        return try await context.activity(Label.self, reservation)
    }
}

/// Runs one awaited child and one started and left running, then reports both.
struct ParentOrder: Workflow {
    static let typeName = "parent-order"
    func run(_ order: String, context: WorkflowContext) async throws -> String {
        let awaited = try await context.child(ShipChild.self, input: order)
        let detached = try await context.startChild(ShipChild.self, id: "detached-\(order)", input: "slow-\(order)")
        _ = detached
        do {
            _ = try await context.child(ShipChild.self, input: "bad-\(order)")
        } catch let error as WorkflowError where error.code == .childFailed {
            return "\(awaited) + failed child: \(error.message)"
        }
        return awaited
    }
}

/// Counts events until it has seen `limit`, continuing as new after each one.
struct Tally: Workflow {
    static let typeName = "tally"
    struct State: Codable, Sendable {
        var total = 0
        var seen = 0
        var limit = 3
    }

    func run(_ state: State, context: WorkflowContext) async throws -> State {
        let seen = WorkflowVariable(state.seen)
        context.onQuery("seen") { seen.value }
        var state = state
        state.total += try await context.waitForEvent("add", as: Int.self) ?? 0
        state.seen += 1
        seen.value = state.seen
        if state.seen < state.limit { try context.continueAsNew(with: state) }
        return state
    }
}

/// Awaits one slow child.
struct WaitsForChild: Workflow {
    static let typeName = "waits-for-child"
    func run(_ order: String, context: WorkflowContext) async throws -> String {
        try await context.child(ShipChild.self, id: "child-of-\(order)", input: "slow-\(order)")
    }
}

/// Returns its input and its instance id.
struct Echo: Workflow {
    static let typeName = "echo"
    func run(_ input: String, context: WorkflowContext) async throws -> String {
        let key = try await context.run("key") { activity in activity.idempotencyKey }
        return "\(input)@\(context.instanceID) key \(key)"
    }
}

/// Runs a child (with its default id) in each of three runs, continuing as new between them.
struct Relay: Workflow {
    static let typeName = "relay"
    struct State: Codable, Sendable {
        var run = 0
        var results: [String] = []
    }

    func run(_ state: State, context: WorkflowContext) async throws -> [String] {
        var state = state
        state.results.append(try await context.child(Echo.self, input: "run\(state.run)"))
        state.run += 1
        if state.run < 3 { try context.continueAsNew(with: state) }
        return state.results
    }
}

@Suite("Child workflows, continue-as-new and queries on a cluster", .timeLimit(.minutes(2)))
struct ChildAndLoopTests {
    let ledger = Counter()

    func engine(unloadAfter: Duration? = .seconds(1)) -> WorkflowEngine {
        // A long resume interval: a parent learns of its child's end from the child, not by asking again.
        let engine = WorkflowEngine(options: .init(resumeInterval: .seconds(60), unloadAfter: unloadAfter))
        engine.register(ShipChild.self)
        engine.register(ParentOrder.self)
        engine.register(Tally.self)
        engine.register(Echo.self)
        engine.register(Relay.self)
        engine.register(activity: Reserve(ledger: ledger))
        engine.register(activity: Label(ledger: ledger, failures: 0))
        return engine
    }

    @Test("a parent awaits a child on another node, leaves one running, and sees a failed child as childFailed")
    func children() async throws {
        let engine = engine()
        try await withTestCluster(nodes: 3, transport: .loopbackTCP, register: { engine.install(on: $0) }) { cluster in
            let client = WorkflowClient(node: cluster.node(0))
            let parent = try await client.start(ParentOrder.self, id: "p1", input: "o1")
            let result = try await parent.result(timeout: .seconds(20))
            #expect(result.hasPrefix("L-R-o1 + failed child: "))
            #expect(result.contains("no stock for bad-o1"))

            let history = try await parent.history()
            #expect(history.map(\.kind) == [.child, .child, .child])
            #expect(history.map(\.target) == ["p1/0", "detached-o1", "p1/2"])
            #expect(!history[1].isResolved, "the detached child was never awaited")

            let child = try await client.describe(id: "p1/0")
            #expect(child.status == .completed)
            #expect(child.parent == "p1")
            #expect(ledger.count("reserve/o1") == 1)

            // The detached child outlives its parent and finishes on its own.
            let detached = client.handle(ShipChild.self, id: "detached-o1")
            #expect(try await detached.describe().status == .running)
            try await detached.signal("go", true)
            #expect(try await detached.result(timeout: .seconds(10)) == "L-R-slow-o1")

            // Starting the parent again returns the finished instance; no child runs again.
            _ = try await client.start(ParentOrder.self, id: "p1", input: "o1")
            #expect(try await parent.result() == result)
            #expect(ledger.count("reserve/o1") == 1)
        }
    }

    @Test(
        "a parent waiting for a slow child learns of its end from the child; cancelling a parent cancels the child it awaits"
    )
    func slowChild() async throws {
        let engine = engine()
        engine.register(WaitsForChild.self)
        try await withTestCluster(nodes: 2, transport: .inMemory, register: { engine.install(on: $0) }) { cluster in
            let client = WorkflowClient(node: cluster.node(0))
            let first = try await client.start(WaitsForChild.self, id: "w0", input: "o1")
            try await eventually("the child waits for its event") {
                try await client.describe(id: "child-of-o1").currentStep?.contains("go") == true
            }
            try await client.handle(ShipChild.self, id: "child-of-o1").signal("go", true)
            // The parent asks its child again only every 60 s: a result within 10 s came from the child's word.
            #expect(try await first.result(timeout: .seconds(10)) == "L-R-slow-o1")

            let parent = try await client.start(WaitsForChild.self, id: "w1", input: "o2")
            try await eventually("the child waits for its event") {
                try await client.describe(id: "child-of-o2").currentStep?.contains("go") == true
            }
            try await parent.cancel()
            await #expect(throws: WorkflowError.self) { try await parent.result(timeout: .seconds(10)) }
            try await eventually("the child was cancelled too") {
                try await client.describe(id: "child-of-o2").status == .cancelled
            }
        }
    }

    @Test(
        "continue-as-new keeps the history bounded; events wait in the inbox across runs; queries read progress without a write"
    )
    func continueAsNewAndQuery() async throws {
        // Kept in memory: an unloaded instance brought back by the query journals its code's event wait again,
        // which is the activation's write, not the query's.
        let engine = engine(unloadAfter: nil)
        try await withTestCluster(nodes: 2, transport: .inMemory, register: { engine.install(on: $0) }) { cluster in
            let client = WorkflowClient(node: cluster.node(0))
            let id = instance(ownedBy: cluster.node(1).nodeID, on: cluster.node(0), prefix: "tally")
            let tally = try await client.start(Tally.self, id: id, input: .init(limit: 3))
            try await eventually("the first run waits") { try await tally.describe().stepCount == 1 }
            #expect(try await tally.query("seen", as: Int.self) == 0)
            // The last journaled sequence, in the entries or (once an unload's checkpoint pruned them) the checkpoint.
            let actor = ActorID(typeName: WorkflowInstance.typeName, key: id)
            let journal = cluster.node(1).journal
            func last() async throws -> UInt64 {
                max(
                    try await journal.lastSequence(for: actor),
                    try await journal.latestCheckpoint(for: actor)?.sequence ?? 0)
            }
            let sequence = try await last()
            _ = try await tally.query("seen", as: Int.self)
            #expect(try await last() == sequence, "a query writes nothing")
            do {
                _ = try await tally.query("missing", as: Int.self)
                Issue.record("an unknown query is refused")
            } catch let error as WorkflowError { #expect(error.code == .unknownQuery) }

            try await tally.signal("add", 5)
            try await eventually("the second run waits") { try await tally.query("seen", as: Int.self) == 1 }
            // Two events at once: the second waits in the inbox for the next run.
            try await tally.signal("add", 7)
            try await tally.signal("add", 11)
            let final = try await tally.result(timeout: .seconds(10))
            #expect(final.total == 23)
            #expect(final.seen == 3)
            let description = try await tally.describe()
            #expect(description.continuedAsNew == 2)
            #expect(try await tally.history().count == 1, "the history holds the last run only")
            do {
                _ = try await tally.query("seen", as: Int.self)
                Issue.record("a finished instance answers no query")
            } catch let error as WorkflowError { #expect(error.code == .unknownQuery) }
        }
    }

    @Test("each run after continue-as-new gets children and idempotency keys of its own")
    func runsDoNotShareIDs() async throws {
        let engine = engine()
        try await withTestCluster(nodes: 2, transport: .inMemory, register: { engine.install(on: $0) }) { cluster in
            let relay = try await WorkflowClient(node: cluster.node(0)).start(Relay.self, id: "relay", input: .init())
            #expect(
                try await relay.result(timeout: .seconds(20)) == [
                    "run0@relay/0 key relay/0/0", "run1@relay@1/0 key relay@1/0/0", "run2@relay@2/0 key relay@2/0/0",
                ])
        }
    }
}
