public import PlexSpaces

/// Scenario 1, the order orchestration of Azure Durable Functions: validate, charge, wait for a manager's
/// approval above a set amount, then ship through a child workflow (reserve, label, dispatch). Every step is
/// an activity with retries and exponential backoff against a stand-in service that fails a set fraction of
/// calls. An approval that is declined or does not come in time rejects the order, and compensation refunds
/// the charge. The instance id is the order's, so starting the same order twice starts it once. The query
/// `progress` tells where it is.
///
/// ```sh
/// plex workflow start order o-17 --input '{"order":"o-17","amount":1500,"failureRate":0.3}'
/// plex workflow query o-17 progress
/// plex workflow signal o-17 approval --payload true
/// plex workflow result o-17
/// ```
public struct OrderWorkflow: Workflow {
    public static let typeName = "order"

    public struct Input: Codable, Sendable {
        public var order: String
        public var amount: Int
        /// Orders of at least this amount wait for a manager's approval. Default: 1,000.
        public var approvalFrom: Int?
        /// How long the approval may take, in seconds. Default: an hour.
        public var approvalTimeout: Int?
        /// The fraction of calls (0 to 1) the stand-in services fail. Default: none.
        public var failureRate: Double?

        public init(
            order: String, amount: Int, approvalFrom: Int? = nil, approvalTimeout: Int? = nil,
            failureRate: Double? = nil
        ) {
            self.order = order
            self.amount = amount
            self.approvalFrom = approvalFrom
            self.approvalTimeout = approvalTimeout
            self.failureRate = failureRate
        }
    }

    /// Retries against a flaky service: 100 ms, 200 ms, 400 ms, … up to 5 s, 10 attempts.
    public static let retry = RetryPolicy(
        initialInterval: .milliseconds(100), backoffCoefficient: 2, maximumInterval: .seconds(5), maximumAttempts: 10)

    public init() {}

    public func run(_ input: Input, context: WorkflowContext) async throws -> String {
        let progress = WorkflowVariable("validating")
        context.onQuery("progress") { progress.value }
        let service = FlakyService(failureRate: input.failureRate ?? 0)
        _ = try await context.run("validate", retry: Self.retry) { activity in
            guard input.amount > 0, !input.order.isEmpty else {
                throw WorkflowError.nonRetryable("invalid order '\(input.order)' of \(input.amount)")
            }
            guard (0...1).contains(input.failureRate ?? 0) else {
                throw WorkflowError.nonRetryable("failureRate is a fraction from 0 to 1, not \(input.failureRate ?? 0)")
            }
            try service.call(activity)
            return true
        }
        progress.value = "charging"
        let charge = try await context.run("charge", retry: Self.retry) { activity in
            try service.call(activity)
            return "charge-\(activity.idempotencyKey)"
        }
        context.addCompensation {
            _ = try await context.run("refund", retry: Self.retry) { activity in
                try service.call(activity)
                return "refunded \(charge)"
            }
        }
        if input.amount >= input.approvalFrom ?? 1_000 {
            progress.value = "waiting for approval"
            context.logger.info("order waits for approval", metadata: ["order": "\(input.order)"])
            let approved = try await context.waitForEvent(
                "approval", as: Bool.self, timeout: .seconds(input.approvalTimeout ?? 3_600))
            guard approved == true else {
                progress.value = "rejected"
                throw WorkflowError.nonRetryable(approved == nil ? "approval expired" : "approval declined")
            }
        }
        progress.value = "shipping"
        let shipment = try await context.child(
            ShippingWorkflow.self, id: "\(context.instanceID)-shipping",
            input: .init(order: input.order, failureRate: input.failureRate))
        progress.value = "done"
        return "\(shipment) (\(charge))"
    }
}

/// Ships an order: reserves the stock, prints the label, dispatches, each against a flaky stand-in service.
public struct ShippingWorkflow: Workflow {
    public static let typeName = "shipping"

    public struct Input: Codable, Sendable {
        public var order: String
        public var failureRate: Double?
        public init(order: String, failureRate: Double? = nil) {
            self.order = order
            self.failureRate = failureRate
        }
    }

    public init() {}

    public func run(_ input: Input, context: WorkflowContext) async throws -> String {
        let service = FlakyService(failureRate: input.failureRate ?? 0)
        let stock = try await context.run("reserve", retry: OrderWorkflow.retry) { activity in
            try service.call(activity)
            return "stock-\(input.order)"
        }
        let label = try await context.run("label", retry: OrderWorkflow.retry) { activity in
            try service.call(activity)
            return "label-\(activity.idempotencyKey)"
        }
        return try await context.run("dispatch", retry: OrderWorkflow.retry) { activity in
            try service.call(activity)
            return "shipped \(input.order) (\(stock), \(label))"
        }
    }
}

/// A stand-in for a remote service that fails a fraction of calls: whether an attempt fails is decided by a
/// hash of its idempotency key and attempt number, so a given instance fails the same attempts on every run
/// (tests can count on it) while different instances fail different ones.
struct FlakyService: Sendable {
    let failureRate: Double

    func call(_ activity: ActivityContext) throws {
        guard failureRate > 0 else { return }
        let hash = StableHash.hash("\(activity.idempotencyKey)#\(activity.attempt)")
        guard Double(hash % 1_000_000) / 1_000_000 >= failureRate else {
            throw ActorFailure(
                code: "unavailable", message: "\(activity.name): the service failed attempt \(activity.attempt)")
        }
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
        try DurableFiles.append("\(context.instanceID) \(context.position) \(context.attempt)\n", to: input.file)
        return context.attempt
    }
}

extension WorkflowEngine {
    /// An engine with the bundled example workflows (``OrderWorkflow``, ``ShippingWorkflow``, ``StepsWorkflow``,
    /// ``PaymentWorkflow``, ``OCFLUpdateWorkflow``), whose payments go to `paymentAPI`.
    public static func examples(options: Options = Options(), paymentAPI: FakePaymentAPI = .examples) -> WorkflowEngine
    {
        let engine = WorkflowEngine(options: options)
        engine.register(OrderWorkflow.self)
        engine.register(ShippingWorkflow.self)
        engine.register(StepsWorkflow.self)
        engine.register(PaymentWorkflow.self)
        engine.register(activity: AppendLine())
        engine.register(OCFLUpdateWorkflow.self)
        engine.register(activity: OCFLStage())
        engine.register(activity: OCFLReadInventory())
        engine.register(activity: OCFLApplyStep())
        engine.register(activity: ChargeCard(api: paymentAPI))
        engine.register(activity: RecordPayment(api: paymentAPI))
        return engine
    }
}
