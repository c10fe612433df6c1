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
        var paymentWorkflows: [Double] = []
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
            // Last (it leaves thousands of finished instances to deactivate): orders below the approval amount: validate, charge, then a shipping child (reserve, label, dispatch).
            let workflows = WorkflowClient(node: node)
            orders.append(
                try await throughput(callers: 256, duration: window, checkEvery: 1) { caller, n in
                    let id = "o-\(run)-\(caller)-\(n)"
                    _ = try await workflows.start(OrderWorkflow.self, id: id, input: .init(order: id, amount: 10))
                    await completions.wait(for: id)
                })
            // Scenario 2: validate, a charge through the file-backed stand-in API (fsync), a record.
            paymentWorkflows.append(
                try await throughput(callers: 256, duration: window, checkEvery: 1) { caller, n in
                    let id = "p-\(run)-\(caller)-\(n)"
                    _ = try await workflows.start(PaymentWorkflow.self, id: id, input: .init(account: "a", amount: 5))
                    await completions.wait(for: id)
                })
            await node.shutdown()
        }
        try await ocfl()
        report("scenario_orders_256_in_flight", median(orders), "orchestrations/s")
        report("scenario_payment_workflows_256_in_flight", median(paymentWorkflows), "payments/s")
        report("scenario_counter_increments_256_callers_1000_counters", median(counters), "increments/s")
        report("scenario_counter_increments_64_callers_1_counter", median(hot), "increments/s")
        report("scenario_payments_256_callers_100_processors", median(payments), "payments/s")
        report("scenario_payments_repeated_256_callers", median(repeats), "payments/s")
    }

    /// OCFL objects made per second, and their content in MB/s: 48 new objects (16 at a time) from one source of
    /// 10 files of 100 kB, each a workflow of 14 journaled steps writing with fsync.
    func ocfl() async throws {
        var rates: [Double] = []
        let files = 10
        let size = 100_000
        for run in 0..<runs {
            let directory = temporaryDirectory("ocfl-\(run)")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            try FileManager.default.createDirectory(atPath: "\(directory)/source", withIntermediateDirectories: true)
            for i in 0..<files {
                try Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i) })
                    .write(to: URL(fileURLWithPath: "\(directory)/source/file\(i).bin"))
            }
            let engine = WorkflowEngine()
            engine.register(OCFLUpdateWorkflow.self)
            engine.register(activity: OCFLStage())
            engine.register(activity: OCFLReadInventory())
            engine.register(activity: OCFLApplyStep())
            let node = try await PlexNode.start(
                NodeConfiguration(dataDirectory: "\(directory)/journal", secret: benchSecret),
                transport: .inMemory(InMemoryNetwork()), logger: quietLogger()
            ) { engine.install(on: $0) }
            let client = WorkflowClient(node: node)
            let objects = 48
            let clock = ContinuousClock()
            let start = clock.now
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<16 {
                    group.addTask {
                        for i in stride(from: worker, to: objects, by: 16) {
                            let handle = try await client.start(
                                OCFLUpdateWorkflow.self, id: "object-\(i)",
                                input: .init(
                                    source: "\(directory)/source", object: "\(directory)/objects/\(i)",
                                    id: "urn:bench:\(i)"))
                            _ = try await handle.result(timeout: .seconds(120))
                        }
                    }
                }
                try await group.waitForAll()
            }
            rates.append(Double(objects) / Bench_seconds(clock.now - start))
            await node.shutdown()
        }
        report("scenario_ocfl_objects_10x100kB_16_at_a_time", median(rates), "objects/s")
        report("scenario_ocfl_content", median(rates) * Double(files * size) / 1e6, "MB/s")
    }
}
