import Foundation
import PlexExamples
import PlexSpaces
import PlexTestKit
import Testing

/// The reference scenarios on three real `plex node` processes, with the crash each original advertises:
/// `kill -9` of the node hosting the actor, a restart, and the work done exactly once.
/// Enabled by `PLEX_INTEGRATION=1` and `PLEX_BIN` (scripts/test.sh sets both).
@Suite(
    "Reference scenarios across kill -9", .serialized, .enabled(if: NodeProcess.binary != nil), .timeLimit(.minutes(3)))
struct ScenarioIntegrationTests {
    let binary = NodeProcess.binary ?? ""

    @Test("counter durable object: the count and its alarm survive kill -9 of its node; the alarm fires at its time")
    func counterObject() async throws {
        let cluster = ProcessCluster(name: "counter", nodes: 3, binary: binary)
        try await cluster.run {
            try await cluster.start()
            // A counter the third node owns, called through the first and second.
            let key = (0..<1000).map { "c\($0)" }.first {
                (try? cluster.owner(of: ActorID(typeName: DurableCounter.typeName, key: $0))) == "n3"
            }!
            let c1 = try await cluster.client("n1")
            let c2 = try await cluster.client("n2")
            for client in [c1, c2, c1, c2, c1] {
                _ = try await client.ask(DurableCounter.self, key: key, .increment(by: 2), timeout: .seconds(5))
            }
            let below = await #expect(throws: CallError.self) {
                try await c2.ask(DurableCounter.self, key: key, .decrement(by: 11), timeout: .seconds(5))
            }
            #expect(below?.remoteCode == DurableCounter.belowZero)
            let armed = try await c1.ask(DurableCounter.self, key: key, .resetAfter(seconds: 4), timeout: .seconds(5))
            #expect(armed.value == 10 && armed.node == "n3")
            let resetAt = try #require(armed.resetAt)

            try await cluster.kill9("n3")
            try await cluster.start("n3")
            try await eventually("the restarted owner answers through both nodes", within: .seconds(20)) {
                let replies = [
                    try? await c1.ask(DurableCounter.self, key: key, .get, timeout: .seconds(2)),
                    try? await c2.ask(DurableCounter.self, key: key, .get, timeout: .seconds(2)),
                ]
                return replies.allSatisfy { $0?.node == "n3" }
            }
            let now = { Int64(Date().timeIntervalSince1970 * 1000) }
            let early = try await c2.ask(DurableCounter.self, key: key, .get, timeout: .seconds(5))
            if now() < resetAt - 200 { #expect(early.value == 10, "the count survived the crash") }
            try await eventually("the alarm resets the count", within: .seconds(20)) {
                try await c2.ask(DurableCounter.self, key: key, .get, timeout: .seconds(5)).value == 0
            }
            #expect(now() >= resetAt, "not before its time")
            #expect(try await c1.ask(DurableCounter.self, key: key, .increment(by: 1), timeout: .seconds(5)).value == 1)
            await c1.close()
            await c2.close()
        }
    }

    @Test(
        "idempotent payment processor: a payment in flight when its node is killed is made once, with one transaction")
    func paymentProcessor() async throws {
        let cluster = ProcessCluster(name: "payments", nodes: 3, binary: binary)
        try await cluster.run {
            try await cluster.start()
            let key = (0..<1000).map { "shop-\($0)" }.first {
                (try? cluster.owner(of: ActorID(typeName: PaymentProcessor.typeName, key: $0))) == "n2"
            }!
            let client = try await cluster.client("n1")
            let first = try #require(
                try await client.ask(
                    PaymentProcessor.self, key: key, .process(order: "o-1", amount: 25), timeout: .seconds(5)
                ).payment)
            // A second order sent as the owner is killed: its reply may or may not arrive.
            async let inFlight = try? client.ask(
                PaymentProcessor.self, key: key, .process(order: "o-2", amount: 40), timeout: .seconds(3))
            try await cluster.kill9("n2")
            let lost = await inFlight
            try await cluster.start("n2")
            // The caller retries until the restarted owner answers.
            var retried: PaymentProcessor.Reply?
            try await eventually("the retried payment is answered", within: .seconds(20)) {
                retried = try? await client.ask(
                    PaymentProcessor.self, key: key, .process(order: "o-2", amount: 40), timeout: .seconds(2))
                return retried != nil
            }
            let second = try #require(retried?.payment)
            if let before = lost?.payment { #expect(before.transaction == second.transaction) }
            // The first order, asked again, is the payment made before the crash.
            let again = try await client.ask(
                PaymentProcessor.self, key: key, .process(order: "o-1", amount: 25), timeout: .seconds(5))
            #expect(again == .init(payment: first, repeated: true))
            let o2 = try await client.ask(PaymentProcessor.self, key: key, .lookup(order: "o-2"), timeout: .seconds(5))
            #expect(o2.payment == second)
            await client.close()
        }
    }

    @Test(
        "payment with journaled side effects: kill -9 between charge and record, and during a charge: one charge each")
    func paymentService() async throws {
        let cluster = ProcessCluster(name: "pay", nodes: 3, binary: binary)
        let api = FakePaymentAPI(directory: cluster.directory + "/api")
        cluster.environment = ["PLEX_EXAMPLE_PAYMENT_API": api.directory]
        try await cluster.run {
            try await cluster.start()
            let c1 = try await cluster.client("n1")
            let workflows = WorkflowClient(client: c1)
            // Ids whose instances the third node owns.
            let ids = (0..<1000).map { "pay-\($0)" }.filter {
                (try? cluster.owner(of: ActorID(typeName: "plex.workflow", key: $0))) == "n3"
            }
            // Killed during the charge (it reached the API, its completion is not journaled), then restarted.
            api.hold("after-charge", true)
            _ = try await workflows.start(PaymentWorkflow.self, id: ids[0], input: .init(account: "acct-1", amount: 30))
            try await eventually("the charge reached the API", within: .seconds(20)) { api.received.count == 1 }
            try await cluster.kill9("n3")
            api.hold("after-charge", false)
            try await cluster.start("n3")
            var transaction: String?
            try await eventually("the payment completes after the restart", within: .seconds(40)) {
                transaction = try? await workflows.handle(PaymentWorkflow.self, id: ids[0]).result(timeout: .seconds(2))
                return transaction != nil
            }
            #expect(api.received.count == 2 && Set(api.received).count == 1, "charged again with the same key")
            #expect(api.applied == 1, "applied once")
            #expect(api.recorded(ids[0]) == "\(transaction ?? "") 30")
            // Killed between the charge (journaled) and the record: the charge does not run again.
            api.hold("before-record", true)
            let second = try await workflows.start(
                PaymentWorkflow.self, id: ids[1], input: .init(account: "acct-2", amount: 50))
            try await eventually("the charge is journaled", within: .seconds(20)) {
                try await second.history().contains { $0.name == ChargeCard.name && $0.outcome != nil }
            }
            try await cluster.kill9("n3")
            api.hold("before-record", false)
            try await cluster.start("n3")
            var recorded: String?
            try await eventually("the second payment completes after the restart", within: .seconds(40)) {
                recorded = try? await workflows.handle(PaymentWorkflow.self, id: ids[1]).result(timeout: .seconds(2))
                return recorded != nil
            }
            #expect(api.received.filter { $0.hasPrefix("\(ids[1])/") }.count == 1, "charged once")
            #expect(api.applied == 2)
            #expect(api.recorded(ids[1]) == "\(recorded ?? "") 50")
            // The same request sent again: the same transaction, no new charge.
            let again = try await workflows.start(
                PaymentWorkflow.self, id: ids[0], input: .init(account: "acct-1", amount: 30))
            #expect(try await again.result(timeout: .seconds(10)) == transaction)
            #expect(api.received.count == 3, "no new charge")
            await c1.close()
        }
    }

    @Test(
        "order orchestration: kill -9 of the order's node while it waits for approval; after the restart it ships once")
    func orderOrchestration() async throws {
        let cluster = ProcessCluster(name: "orders", nodes: 3, binary: binary)
        try await cluster.run {
            try await cluster.start()
            let id = (0..<1000).map { "o-\($0)" }.first {
                (try? cluster.owner(of: ActorID(typeName: "plex.workflow", key: $0))) == "n3"
            }!
            let c1 = try await cluster.client("n1")
            let c2 = try await cluster.client("n2")
            let order = try await WorkflowClient(client: c1).start(
                OrderWorkflow.self, id: id, input: .init(order: id, amount: 5_000, failureRate: 0.3))
            try await eventually("the order waits for approval", within: .seconds(30)) {
                try await order.query("progress", as: String.self) == "waiting for approval"
            }
            try await cluster.kill9("n3")
            try await cluster.start("n3")
            let approval = WorkflowClient(client: c2).handle(OrderWorkflow.self, id: id)
            try await eventually("the restarted owner takes the approval", within: .seconds(30)) {
                (try? await approval.signal("approval", true)) != nil
            }
            // n1 redials the restarted n3 on its own schedule; until then a call through it is nodeUnavailable.
            try await eventually("n1 reaches the restarted owner", within: .seconds(30)) {
                (try? await order.describe()) != nil
            }
            let shipped = try await order.result(timeout: .seconds(60))
            #expect(shipped.hasPrefix("shipped \(id)"))
            // Exactly once: one charge step, one shipping child, each activity journaled complete once.
            let history = try await order.history()
            #expect(history.filter { $0.name == "charge" }.count == 1)
            #expect(history.filter { $0.kind == .child }.count == 1)
            #expect(history.allSatisfy { $0.isResolved })
            #expect(
                try await WorkflowClient(client: c2).start(
                    OrderWorkflow.self, id: id, input: .init(order: id, amount: 5_000)
                ).result(timeout: .seconds(10)) == shipped)
            await c1.close()
            await c2.close()
        }
    }

    @Test("OCFL update on a 3-node cluster: kill -9 of the instance's node midway; after the restart a valid object")
    func ocflOnCluster() async throws {
        let validator = try #require(
            ProcessInfo.processInfo.environment["PLEX_OCFL_VALIDATE"], "scripts/test.sh installs ocfl-py")
        let cluster = ProcessCluster(name: "ocfl", nodes: 3, binary: binary)
        try await cluster.run {
            let source = cluster.directory + "/source"
            try FileManager.default.createDirectory(atPath: source + "/data", withIntermediateDirectories: true)
            for i in 1...5 { try Data("file \(i)\n".utf8).write(to: URL(fileURLWithPath: "\(source)/data/f\(i).txt")) }
            try await cluster.start()
            let id = (0..<1000).map { "ocfl-\($0)" }.first {
                (try? cluster.owner(of: ActorID(typeName: "plex.workflow", key: $0))) == "n3"
            }!
            let client = try await cluster.client("n1")
            let workflows = WorkflowClient(client: client)
            let input = OCFLUpdateWorkflow.Input(
                source: source, object: cluster.directory + "/object", id: "urn:test:cluster",
                stepDelayMilliseconds: 200)
            let update = try await workflows.start(OCFLUpdateWorkflow.self, id: id, input: input)
            try await eventually("three steps done", within: .seconds(30)) {
                try await update.history().filter { $0.name == OCFLApplyStep.name && $0.outcome != nil }.count >= 3
            }
            try await cluster.kill9("n3")
            try await cluster.start("n3")
            var output: OCFLUpdateWorkflow.Output?
            try await eventually("the update completes after the restart", within: .seconds(60)) {
                output = try? await workflows.handle(OCFLUpdateWorkflow.self, id: id).result(timeout: .seconds(2))
                return output != nil
            }
            #expect(output?.version == "v1" && output?.steps == 9)
            let check = try NodeProcess.launch(validator, [cluster.directory + "/object"])
            #expect(
                try await check.waitForExit() == 0 && check.standardOutput.contains("is VALID"),
                "\(check.standardOutput)")
            // Steps journaled before the kill ran once.
            let history = try await update.history().filter { $0.name == OCFLApplyStep.name }
            #expect(history.count == 9 && history.prefix(3).allSatisfy { $0.attempts == 1 })
            await client.close()
        }
    }
}
