import PlexCore
import PlexSpaces
import PlexTestKit
import Synchronization
import Testing

@testable import PlexWorkflow

/// Reserves stock for an order; counts its runs in a ledger shared by the test's nodes.
struct Reserve: Activity {
    static let name = "reserve"
    let ledger: Counter
    func run(_ order: String, context: ActivityContext) async throws -> String {
        ledger.bump("reserve/\(order)")
        return "R-\(order)"
    }
}

/// Prints a shipping label; fails its first `failures` attempts per order.
struct Label: Activity {
    static let name = "label"
    static let retryPolicy = RetryPolicy(initialInterval: .milliseconds(100), maximumAttempts: 5)
    let ledger: Counter
    let failures: Int
    func run(_ reservation: String, context: ActivityContext) async throws -> String {
        let attempt = ledger.bump("label/\(reservation)")
        if attempt <= failures { throw ActorFailure(code: "printer-jam", message: "attempt \(attempt) jammed") }
        return "L-\(reservation)"
    }
}

/// Reserve, (optionally) wait for approval, sleep, then print a label.
struct ShipOrder: Workflow {
    static let typeName = "ship-order"
    struct Input: Codable, Sendable {
        var order: String
        var approval = false
        var pause: Int = 0
    }

    func run(_ input: Input, context: WorkflowContext) async throws -> String {
        let reservation = try await context.activity(Reserve.self, input.order)
        if input.approval {
            guard let approved = try await context.waitForEvent("approval", as: Bool.self, timeout: .seconds(20)) else {
                return "expired"
            }
            if !approved { return "rejected" }
        }
        if input.pause > 0 { try await context.sleep(for: .milliseconds(input.pause)) }
        return try await context.activity(Label.self, reservation)
    }
}

/// An instance id of `ShipOrder` owned by `owner`.
func instance(ownedBy owner: NodeID, on node: PlexNode, prefix: String) -> String {
    key(ofType: WorkflowInstance.typeName, ownedBy: owner, on: node, prefix: "\(prefix)-")
}

@Suite("Workflows on a cluster", .timeLimit(.minutes(2)))
struct WorkflowClusterTests {
    let ledger = Counter()

    func engine(labelFailures: Int = 0) -> WorkflowEngine {
        let engine = WorkflowEngine(options: .init(resumeInterval: .milliseconds(300)))
        engine.register(ShipOrder.self)
        engine.register(activity: Reserve(ledger: ledger))
        engine.register(activity: Label(ledger: ledger, failures: labelFailures))
        return engine
    }

    @Test("start from any node runs the instance on its owner once; starting it again returns the same instance")
    func startIsIdempotent() async throws {
        let engine = engine(labelFailures: 2)
        try await withTestCluster(nodes: 2, transport: .loopbackTCP, register: { engine.install(on: $0) }) { cluster in
            let id = instance(ownedBy: cluster.node(1).nodeID, on: cluster.node(0), prefix: "order")
            let client = WorkflowClient(node: cluster.node(0))
            let handle = try await client.start(ShipOrder.self, id: id, input: .init(order: "o1"))
            #expect(try await handle.result(timeout: .seconds(20)) == "L-R-o1")
            let again = try await client.start(ShipOrder.self, id: id, input: .init(order: "o1"))
            #expect(try await again.result() == "L-R-o1")
            #expect(ledger.count("reserve/o1") == 1)
            #expect(ledger.count("label/R-o1") == 3, "two jammed attempts, then one that printed")
            let history = try await WorkflowClient(node: cluster.node(1)).handle(ShipOrder.self, id: id).history()
            #expect(history.map(\.name) == ["reserve", "label"])
            #expect(history.map(\.attempts) == [1, 3])
            #expect(history[1].lastFailure?.code == "printer-jam")
            let description = try await handle.describe()
            #expect(description.status == .completed)
            #expect(description.type == ShipOrder.typeName)
            // A status read is not journaled.
            let entries = try await cluster.node(1).journal.entries(
                for: ActorID(typeName: WorkflowInstance.typeName, key: id)
            ).count
            for _ in 0..<5 { _ = try await handle.describe() }
            #expect(
                try await cluster.node(1).journal.entries(for: ActorID(typeName: WorkflowInstance.typeName, key: id))
                    .count == entries)
        }
    }

    @Test("an instance waits for its approval event, sent from another node")
    func approval() async throws {
        let engine = engine()
        try await withTestCluster(nodes: 2, transport: .inMemory, register: { engine.install(on: $0) }) { cluster in
            let id = instance(ownedBy: cluster.node(1).nodeID, on: cluster.node(0), prefix: "approve")
            let handle = try await WorkflowClient(node: cluster.node(0)).start(
                ShipOrder.self, id: id, input: .init(order: "o2", approval: true))
            try await eventually("it waits for approval") {
                try await handle.describe().currentStep?.contains("approval") == true
            }
            let waiting = try await handle.describe()
            #expect(waiting.status == .running)
            #expect(waiting.nextDueAt != nil, "the wait's deadline is shown")
            try await WorkflowClient(node: cluster.node(1)).handle(ShipOrder.self, id: id).signal("approval", true)
            #expect(try await handle.result(timeout: .seconds(10)) == "L-R-o2")
        }
    }

    @Test(
        "the owner crashes during a timer: after its restart the timer fires at its journaled time, and nothing runs twice"
    )
    func crashDuringTimer() async throws {
        let engine = engine()
        try await withTestCluster(nodes: 2, transport: .loopbackTCP, register: { engine.install(on: $0) }) { cluster in
            let caller = cluster.node(0)
            let id = instance(ownedBy: cluster.node(1).nodeID, on: caller, prefix: "timer")
            let handle = try await WorkflowClient(node: caller).start(
                ShipOrder.self, id: id, input: .init(order: "o3", pause: 1_500))
            try await eventually("the timer is journaled") {
                try await handle.describe().currentStep?.contains("sleep") == true
            }
            let due = try #require(try await handle.describe().nextDueAt)
            await cluster.crash(1)
            let restarted = try await cluster.restart(1)
            try await cluster.waitUntil(caller, isConnectedTo: restarted)
            #expect(try await handle.result(timeout: .seconds(20)) == "L-R-o3")
            let history = try await handle.history()
            #expect(history[1].dueAt == due, "the timer kept its journaled due time")
            #expect(try #require(history[1].completedAt) >= due)
            #expect(ledger.count("reserve/o3") == 1, "the journaled activity did not run again")
            #expect(ledger.count("label/R-o3") == 1)
        }
    }

    @Test("an instance on a node that leaves gracefully finishes on its new owner")
    func leaveMovesInstance() async throws {
        let engine = engine()
        try await withTestCluster(nodes: 3, transport: .inMemory, register: { engine.install(on: $0) }) { cluster in
            let caller = cluster.node(0)
            let id = instance(ownedBy: cluster.node(2).nodeID, on: caller, prefix: "leave")
            let handle = try await WorkflowClient(node: caller).start(
                ShipOrder.self, id: id, input: .init(order: "o4", approval: true))
            try await eventually("it waits for approval") {
                try await handle.describe().currentStep?.contains("approval") == true
            }
            let result = await cluster.leave(2)
            #expect(result.failed == 0)
            try await handle.signal("approval", true)
            #expect(try await handle.result(timeout: .seconds(20)) == "L-R-o4")
            #expect(ledger.count("reserve/o4") == 1)
            #expect(caller.owner(of: ActorID(typeName: WorkflowInstance.typeName, key: id)) != nil)
        }
    }

    @Test("cancel runs the code's cancellation; terminate stops it; bad requests get typed errors")
    func controlAndErrors() async throws {
        let engine = engine()
        try await withTestCluster(nodes: 1, transport: .inMemory, register: { engine.install(on: $0) }) { cluster in
            let client = WorkflowClient(node: cluster.node(0))
            let cancelled = try await client.start(ShipOrder.self, id: "c1", input: .init(order: "c1", approval: true))
            try await eventually("waiting") { try await cancelled.describe().currentStep?.contains("approval") == true }
            try await cancelled.cancel()
            await #expect(throws: WorkflowError(.cancelled, "workflow c1 was cancelled")) {
                try await cancelled.result(timeout: .seconds(10))
            }

            let terminated = try await client.start(ShipOrder.self, id: "t1", input: .init(order: "t1", approval: true))
            try await terminated.terminate(reason: "operator said so")
            #expect(try await terminated.describe().status == .terminated)
            await #expect(throws: WorkflowError.self) { try await terminated.signal("approval", true) }

            do {
                _ = try await client.handle(ShipOrder.self, id: "nobody").result(timeout: .seconds(1))
                Issue.record("an instance never started has no result")
            } catch let error as WorkflowError { #expect(error.code == .notFound) }
            do {
                try await client.handle(ShipOrder.self, id: "nobody").signal("approval", true)
                Issue.record("a signal to an instance never started is refused")
            } catch let error as WorkflowError { #expect(error.code == .notFound) }
            do {
                try await client.handle(ShipOrder.self, id: "nobody").cancel()
                Issue.record("a cancel of an instance never started is refused")
            } catch let error as WorkflowError { #expect(error.code == .notFound) }
            do {
                try await client.handle(ShipOrder.self, id: "nobody").terminate(reason: "typo")
                Issue.record("a terminate of an instance never started is refused")
            } catch let error as WorkflowError { #expect(error.code == .notFound) }
            #expect(try await client.handle(ShipOrder.self, id: "nobody").describe().status == .pending)
            do {
                _ = try await client.start(Unregistered.self, id: "u1", input: 1)
                Issue.record("an unregistered type is refused")
            } catch let error as WorkflowError { #expect(error.code == .unknownWorkflowType) }
            do {
                _ = try await client.start(
                    typeName: ShipOrder.typeName, id: "j1", jsonInput: Array(#"{"order":1}"#.utf8))
                Issue.record("an input that does not decode is refused")
            } catch let error as WorkflowError {
                #expect(error.code == .invalidArgument)
                #expect(error.message.contains("order"))
            }
            let fromJSON = try await client.start(
                typeName: ShipOrder.typeName, id: "j2",
                jsonInput: Array(#"{"order":"j2","approval":false,"pause":0}"#.utf8))
            #expect(fromJSON.status == .running)
            let done = try await client.awaitCompletion(id: "j2", json: true, timeout: .seconds(10))
            #expect(done.outputJSON.map { String(decoding: $0, as: UTF8.self) } == #""L-R-j2""#)
            do {
                _ = try await client.start(Unregistered.self, id: "c1", input: 1)
                Issue.record("an id taken by another type is refused")
            } catch let error as WorkflowError { #expect(error.code == .typeMismatch) }
        }
    }
}

struct Unregistered: Workflow {
    static let typeName = "unregistered"
    func run(_ input: Int, context: WorkflowContext) async throws -> Int { input }
}
