import Foundation
import PlexExamples
import PlexSpaces
import PlexTestKit
import Testing

@Suite("Scenario 2: a payment with journaled side effects", .timeLimit(.minutes(2)))
struct PaymentServiceTests {
    let directory = FileManager.default.temporaryDirectory.path + "/plex-pay-\(UInt32.random(in: 0...UInt32.max))"

    /// Three nodes hosting the example workflows, their payments going to a stand-in API of this test's own.
    func withPaymentCluster(_ body: @escaping @Sendable (FakePaymentAPI, TestCluster) async throws -> Void)
        async throws
    {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let api = FakePaymentAPI(directory: directory)
        let engine = WorkflowEngine.examples(paymentAPI: api)
        try await withTestCluster(
            nodes: 3, transport: .inMemory, register: { $0.registerExamples(workflows: engine) }
        ) { cluster in try await body(api, cluster) }
    }

    @Test("the same request twice charges once and returns one transaction; an invalid one charges nothing")
    func sameRequestTwice() async throws {
        try await withPaymentCluster { api, cluster in
            let input = PaymentWorkflow.Input(account: "acct-7", amount: 25)
            let first = try await WorkflowClient(node: cluster.node(0)).start(
                PaymentWorkflow.self, id: "pay-1", input: input)
            let transaction = try await first.result(timeout: .seconds(10))
            let second = try await WorkflowClient(node: cluster.node(1)).start(
                PaymentWorkflow.self, id: "pay-1", input: input)
            #expect(try await second.result(timeout: .seconds(10)) == transaction)
            #expect(api.received.count == 1 && api.applied == 1, "one charge")
            #expect(api.recorded("pay-1") == "\(transaction) 25")

            let invalid = try await WorkflowClient(node: cluster.node(2)).start(
                PaymentWorkflow.self, id: "pay-bad", input: .init(account: "", amount: 25))
            let error = await #expect(throws: WorkflowError.self) { try await invalid.result(timeout: .seconds(10)) }
            #expect(error?.message.contains("invalid payment") == true)
            #expect(api.received.count == 1, "validation failed before any charge")
        }
    }

    @Test("a charge under way when its node crashes runs again with the same key: the API applies it once")
    func crashDuringCharge() async throws {
        try await withPaymentCluster { api, cluster in
            api.hold("after-charge", true)
            let instance = ActorID(typeName: "plex.workflow", key: "pay-2")
            let owner = cluster.node(0).owner(of: instance)
            let index = try #require((0..<3).first { cluster.node($0).nodeID == owner })
            let caller = cluster.node((index + 1) % 3)
            _ = try await WorkflowClient(node: caller).start(
                PaymentWorkflow.self, id: "pay-2", input: .init(account: "acct-8", amount: 40))
            try await eventually("the charge reached the API") { api.received.count == 1 }
            await cluster.crash(index)
            api.hold("after-charge", false)
            try await cluster.restart(index)
            var transaction: String?
            try await eventually("the payment completes on the restarted owner", within: .seconds(30)) {
                let handle = WorkflowClient(node: caller).handle(PaymentWorkflow.self, id: "pay-2")
                transaction = try? await handle.result(timeout: .seconds(2))
                return transaction != nil
            }
            #expect(api.received.count == 2, "the charge ran again after the crash")
            #expect(Set(api.received).count == 1, "with the same idempotency key")
            #expect(api.applied == 1, "and was applied once")
            #expect(api.recorded("pay-2") == "\(transaction ?? "") 40")
        }
    }

    @Test("the payment API refuses a reused key with other parameters, and takes keys of any length")
    func apiKeys() throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let api = FakePaymentAPI(directory: directory)
        let transaction = try api.charge(account: "a", amount: 5, key: "k")
        #expect(try api.charge(account: "a", amount: 5, key: "k") == transaction)
        #expect(throws: WorkflowError.self) { try api.charge(account: "b", amount: 5, key: "k") }
        #expect(throws: WorkflowError.self) { try api.charge(account: "a", amount: 6, key: "k") }
        let long = String(repeating: "x", count: 300)
        let other = try api.charge(account: "a", amount: 5, key: long)
        #expect(other != transaction && api.applied == 2)
        try api.record(request: long, transaction: other, amount: 5)
        #expect(api.recorded(long) == "\(other) 5")
    }
}
