import Foundation
import PlexExamples
import PlexSpaces

extension All {
    /// The reference scenarios' figures, one node (in-memory network, `synchronous=FULL`): order orchestrations
    /// per second (256 in flight, each an order and its shipping child, six activities), counter increments
    /// per second (256 callers over 1,000 durable counters, and 64 callers on one), and payments per second
    /// (256 callers making new payments over 100 processors, and repeating paid orders).
    func scenarios(window: Duration) async throws {
        var orders: [Double] = []
        var counters: [Double] = []
        var hot: [Double] = []
        var payments: [Double] = []
        var repeats: [Double] = []
        for run in 0..<runs {
            let directory = temporaryDirectory("scenarios-\(run)")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let completions = Completions()
            let engine = WorkflowEngine.examples(
                options: .init(onClose: { id, status in completions.closed(id, status) }),
                paymentAPI: FakePaymentAPI(directory: directory + "-payment-api"))
            defer { try? FileManager.default.removeItem(atPath: directory + "-payment-api") }
            let node = try await PlexNode.start(
                NodeConfiguration(dataDirectory: directory, secret: benchSecret),
                transport: .inMemory(InMemoryNetwork()), logger: quietLogger()
            ) { $0.registerExamples(workflows: engine) }
            // Orders below the approval amount: validate, charge, then a shipping child (reserve, label, dispatch).
            let workflows = WorkflowClient(node: node)
            orders.append(
                try await throughput(callers: 256, duration: window) { caller, n in
                    let id = "o-\(run)-\(caller)-\(n)"
                    _ = try await workflows.start(OrderWorkflow.self, id: id, input: .init(order: id, amount: 10))
                    await completions.wait(for: id)
                })
            let refs = (0..<1000).map { node.actor(DurableCounter.self, key: "c\($0)") }
            counters.append(
                try await throughput(callers: 256, duration: window) { caller, n in
                    _ = try await refs[(caller &* 7 &+ n &* 13) % 1000].ask(.increment(by: 1))
                })
            hot.append(
                try await throughput(callers: 64, duration: window) { _, _ in
                    _ = try await refs[1].ask(.increment(by: 1))
                })
            let shops = (0..<100).map { node.actor(PaymentProcessor.self, key: "shop-\($0)") }
            payments.append(
                try await throughput(callers: 256, duration: window) { caller, n in
                    _ = try await shops[caller % 100].ask(.process(order: "o-\(caller)-\(n)", amount: 25))
                })
            // Orders the first run paid: each is answered from the processor's state.
            repeats.append(
                try await throughput(callers: 256, duration: window) { caller, n in
                    _ = try await shops[caller % 100].ask(.process(order: "o-\(caller)-\(n % 8)", amount: 25))
                })
            await node.shutdown()
        }
        report("scenario_orders_256_in_flight", median(orders), "orchestrations/s")
        report("scenario_counter_increments_256_callers_1000_counters", median(counters), "increments/s")
        report("scenario_counter_increments_64_callers_1_counter", median(hot), "increments/s")
        report("scenario_payments_256_callers_100_processors", median(payments), "payments/s")
        report("scenario_payments_repeated_256_callers", median(repeats), "payments/s")
    }
}
