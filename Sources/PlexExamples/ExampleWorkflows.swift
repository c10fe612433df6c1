public import PlexSpaces

#if canImport(Glibc)
    import Glibc
#endif

/// An order: reserve stock, charge, wait for a manager's approval above 1,000, then ship (a child workflow).
/// A declined or expired approval refunds the charge and releases the stock (compensation). The query
/// `progress` tells where it is.
///
/// ```sh
/// plex workflow start order o-17 --input '{"order":"o-17","amount":1500}'
/// plex workflow query o-17 progress
/// plex workflow signal o-17 approval --payload true
/// plex workflow result o-17
/// ```
public struct OrderWorkflow: Workflow {
    public static let typeName = "order"

    public struct Input: Codable, Sendable {
        public var order: String
        public var amount: Int
        public init(order: String, amount: Int) {
            self.order = order
            self.amount = amount
        }
    }

    public init() {}

    public func run(_ input: Input, context: WorkflowContext) async throws -> String {
        let progress = WorkflowVariable("reserving")
        context.onQuery("progress") { progress.value }
        let reservation = try await context.run("reserve") { _ in "stock-\(input.order)" }
        context.addCompensation { _ = try await context.run("release") { _ in reservation } }
        let charge = try await context.run("charge") { activity in "charge-\(activity.idempotencyKey)" }
        context.addCompensation { _ = try await context.run("refund") { _ in charge } }
        if input.amount >= 1_000 {
            progress.value = "waiting for approval"
            context.logger.info("order waits for approval", metadata: ["order": "\(input.order)"])
            let approved = try await context.waitForEvent("approval", as: Bool.self, timeout: .seconds(3_600))
            guard approved == true else {
                throw WorkflowError.nonRetryable(approved == nil ? "approval expired" : "approval declined")
            }
        }
        progress.value = "shipping"
        try await context.sleep(for: .seconds(1))
        let shipment = try await context.child(
            ShippingWorkflow.self, id: "\(context.instanceID)-shipping", input: input.order)
        progress.value = "done"
        return "\(shipment) (\(reservation), \(charge))"
    }
}

/// Ships an order: packs it and prints its label at the same time, then dispatches it.
public struct ShippingWorkflow: Workflow {
    public static let typeName = "shipping"

    public init() {}

    public func run(_ order: String, context: WorkflowContext) async throws -> String {
        let pack = try context.startRun("pack") { _ in "packed" }
        let label = try context.startRun("label") { activity in "label-\(activity.idempotencyKey)" }
        let done = try await context.all([pack, label])
        return try await context.run("dispatch") { _ in "shipped \(order) (\(done.joined(separator: ", ")))" }
    }
}

/// Writes `steps` lines to a file, one activity per line, with a durable timer between them; each line's first
/// `failFirstAttempts` attempts fail (retried with backoff). Every attempt that writes appends
/// `<instance> <position> <attempt>`, so a test can count how often each step ran.
public struct StepsWorkflow: Workflow {
    public static let typeName = "steps"

    public struct Input: Codable, Sendable {
        public var file: String
        public var steps: Int
        public var pauseMilliseconds: Int
        public var failFirstAttempts: Int
        public init(file: String, steps: Int, pauseMilliseconds: Int = 0, failFirstAttempts: Int = 0) {
            self.file = file
            self.steps = steps
            self.pauseMilliseconds = pauseMilliseconds
            self.failFirstAttempts = failFirstAttempts
        }
    }

    public init() {}

    public func run(_ input: Input, context: WorkflowContext) async throws -> Int {
        let retry = RetryPolicy(initialInterval: .milliseconds(200), maximumAttempts: input.failFirstAttempts + 3)
        for step in 0..<input.steps {
            let line = AppendLine.Input(file: input.file, failFirstAttempts: input.failFirstAttempts)
            _ = try await context.activity(AppendLine.self, line, retry: retry)
            if input.pauseMilliseconds > 0, step < input.steps - 1 {
                try await context.sleep(for: .milliseconds(input.pauseMilliseconds))
            }
        }
        return input.steps
    }
}

/// Appends `<instance> <position> <attempt>` to a file, after failing the first attempts it is told to.
public struct AppendLine: Activity {
    public static let name = "append-line"

    public struct Input: Codable, Sendable {
        public var file: String
        public var failFirstAttempts: Int
    }

    public init() {}

    public func run(_ input: Input, context: ActivityContext) async throws -> Int {
        guard context.attempt > input.failFirstAttempts else {
            throw ActorFailure(code: "not-yet", message: "attempt \(context.attempt) fails on purpose")
        }
        let line = "\(context.instanceID) \(context.position) \(context.attempt)\n"
        guard let handle = fopen(input.file, "a") else {
            throw ActorFailure(code: "io", message: "cannot open \(input.file)")
        }
        defer { fclose(handle) }
        fputs(line, handle)
        fflush(handle)
        fsync(fileno(handle))
        return context.attempt
    }
}

extension WorkflowEngine {
    /// An engine with the bundled example workflows (``OrderWorkflow``, ``ShippingWorkflow``, ``StepsWorkflow``,
    /// ``PaymentWorkflow``), whose payments go to `paymentAPI`.
    public static func examples(options: Options = Options(), paymentAPI: FakePaymentAPI = .examples) -> WorkflowEngine
    {
        let engine = WorkflowEngine(options: options)
        engine.register(OrderWorkflow.self)
        engine.register(ShippingWorkflow.self)
        engine.register(StepsWorkflow.self)
        engine.register(PaymentWorkflow.self)
        engine.register(activity: AppendLine())
        engine.register(activity: ChargeCard(api: paymentAPI))
        engine.register(activity: RecordPayment(api: paymentAPI))
        return engine
    }
}
