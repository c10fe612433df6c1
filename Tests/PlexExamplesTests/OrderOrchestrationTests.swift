import PlexExamples
import PlexSpaces
import PlexTestKit
import Testing

@Suite("Scenario 1: order orchestration", .timeLimit(.minutes(2)))
struct OrderOrchestrationTests {
    @Test("a small order retries its flaky steps with backoff and ships through its child workflow")
    func flakyServices() async throws {
        try await withTestCluster(nodes: 3, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let client = WorkflowClient(node: cluster.node(0))
            let order = try await client.start(
                OrderWorkflow.self, id: "o-flaky", input: .init(order: "o-flaky", amount: 200, failureRate: 0.4))
            let shipped = try await order.result(timeout: .seconds(60))
            #expect(shipped.hasPrefix("shipped o-flaky (stock-o-flaky, label-o-flaky-shipping/1)"))
            let steps =
                try await order.history()
                + (try await client.handle(ShippingWorkflow.self, id: "o-flaky-shipping").history())
            let activities = steps.filter { $0.kind == .activity }
            #expect(activities.map(\.name) == ["validate", "charge", "reserve", "label", "dispatch"])
            #expect(activities.contains { $0.attempts > 1 }, "some calls failed and were retried")
            for step in activities where step.attempts > 1 {
                #expect(step.lastFailure?.message.contains("the service failed") == true)
            }
        }
    }

    @Test("starting the same order twice starts it once")
    func sameOrderTwice() async throws {
        try await withTestCluster(nodes: 3, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let input = OrderWorkflow.Input(order: "o-twice", amount: 10)
            let first = try await WorkflowClient(node: cluster.node(0)).start(
                OrderWorkflow.self, id: "o-twice", input: input)
            let second = try await WorkflowClient(node: cluster.node(2)).start(
                OrderWorkflow.self, id: "o-twice", input: input)
            #expect(try await first.result(timeout: .seconds(30)) == (try await second.result(timeout: .seconds(30))))
            #expect(try await first.history().filter { $0.name == "charge" }.count == 1)
        }
    }

    @Test("above the set amount the order waits for approval: approved it ships; expired it is rejected and refunded")
    func approval() async throws {
        try await withTestCluster(nodes: 3, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let client = WorkflowClient(node: cluster.node(1))
            let approved = try await client.start(
                OrderWorkflow.self, id: "o-big", input: .init(order: "o-big", amount: 600, approvalFrom: 500))
            try await eventually("it waits for approval") {
                try await approved.query("progress", as: String.self) == "waiting for approval"
            }
            try await WorkflowClient(node: cluster.node(2)).handle(OrderWorkflow.self, id: "o-big")
                .signal("approval", true)
            #expect(try await approved.result(timeout: .seconds(30)).hasPrefix("shipped o-big"))

            let expiring = try await client.start(
                OrderWorkflow.self, id: "o-late",
                input: .init(order: "o-late", amount: 600, approvalFrom: 500, approvalTimeout: 1))
            let error = await #expect(throws: WorkflowError.self) { try await expiring.result(timeout: .seconds(30)) }
            #expect(error?.message.contains("approval expired") == true)
            #expect(try await expiring.describe().status == .failed)
            let names = try await expiring.history().map(\.name)
            #expect(names.contains("refund"), "the charge was refunded by compensation: \(names)")
            #expect(!names.contains { $0 == "shipping" })
        }
    }

    @Test("an order cancelled while it waits for approval is refunded (compensation), unloaded or not")
    func cancelRefunds() async throws {
        try await withTestCluster(nodes: 2, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let client = WorkflowClient(node: cluster.node(0))
            for (id, unload) in [("o-cancel-now", false), ("o-cancel-unloaded", true)] {
                let order = try await client.start(OrderWorkflow.self, id: id, input: .init(order: id, amount: 1_500))
                let instance = ActorID(typeName: "plex.workflow", key: id)
                let owner = try #require(
                    (0..<2).first { cluster.node($0).nodeID == cluster.node(0).owner(of: instance) })
                // Read from the owner's journal: a message (a query, a status) would keep the instance in memory.
                try await eventually("it waits for approval") {
                    let steps = try await WorkflowInspector.record(of: id, in: cluster.node(owner).journal).record.steps
                    return steps.last?.name == "approval"
                }
                if unload {
                    try await eventually("the waiting instance unloads") { !cluster.node(owner).isActive(instance) }
                }
                _ = try await WorkflowClient(node: cluster.node(1)).handle(OrderWorkflow.self, id: id).cancel()
                let error = await #expect(throws: WorkflowError.self) { try await order.result(timeout: .seconds(30)) }
                #expect(error?.code == .cancelled, "\(id)")
                let names = try await order.history().map(\.name)
                #expect(names.contains("refund"), "\(id): the charge was refunded: \(names)")
            }
        }
    }
}
