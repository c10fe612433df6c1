internal import FoundationEssentials
public import PlexSpaces

/// Scenario 3, the idempotent payment processor of AWS durable functions: a request/reply durable actor that
/// keeps the payments it processed in its state. A repeated request for an order returns the payment it
/// made the first time (same transaction id) instead of charging again; the record of a processed order is
/// kept for ``retention``, then forgotten (a request after that is a new payment).
///
/// Its state is journaled with each request before the reply leaves, so the records survive a crash or a
/// restart of the node and move with the actor. The clock is injected (tests move it by hand) and read as a
/// journaled effect, so replay sees the time the first run saw.
///
/// ```sh
/// plex call payment-processor/shop-1 '{"process":{"order":"o-1","amount":25}}'
/// ```
public struct PaymentProcessor: VirtualActor {
    public static let typeName = "payment-processor"
    public static let durability = Durability.durable(checkpointEvery: 100)

    public struct State: ActorState {
        /// The processed orders by order id (an expired one may linger until the next sweep; it counts as gone).
        public var payments: [String: Payment] = [:]
        /// When the next sweep of expired records is due (milliseconds since 1970): records are dropped in
        /// batches, so a request costs the same however many orders are kept.
        public var nextSweep: Int64 = 0
        public init() {}
    }

    public enum Request: Codable, Sendable {
        /// Charges `amount` for `order`, once per order within the retention.
        case process(order: String, amount: Int)
        /// The payment made for `order`, if it is still kept.
        case lookup(order: String)
    }

    /// A processed payment.
    public struct Payment: Codable, Sendable, Hashable {
        public var order: String
        public var amount: Int
        public var transaction: String
        /// When it was processed (milliseconds since 1970, by the processor's clock).
        public var processedAt: Int64
    }

    /// The payment for the order (`nil` when a lookup finds none kept), and whether an earlier request made it
    /// (`repeated`: this one charged nothing).
    public struct Reply: Codable, Sendable, Hashable {
        public var payment: Payment?
        public var repeated: Bool
        public init(payment: Payment?, repeated: Bool) {
            self.payment = payment
            self.repeated = repeated
        }
    }

    /// How long a processed order's record is kept.
    public let retention: Duration
    /// Now, in milliseconds since 1970.
    let clock: @Sendable () -> Int64

    /// Keeps records for a day, by the system clock.
    public init() {
        self.init(retention: .seconds(86_400))
    }

    /// Keeps records for `retention`, by `clock` (milliseconds since 1970; the system clock when `nil`).
    public init(retention: Duration, clock: (@Sendable () -> Int64)? = nil) {
        self.retention = retention
        self.clock = clock ?? { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }
    }

    public func handle(_ request: Request, state: inout State, context: ActorContext) async throws -> Reply {
        let clock = self.clock
        let now = try await context.run("clock") { clock() }
        let kept = Int64(retention.components.seconds) * 1000
        let cutoff = now - kept
        if now >= state.nextSweep {
            state.payments = state.payments.filter { $0.value.processedAt > cutoff }
            state.nextSweep = now + max(kept / 8, 1000)
        }
        func live(_ order: String) -> Payment? {
            state.payments[order].flatMap { $0.processedAt > cutoff ? $0 : nil }
        }
        switch request {
        case .process(let order, let amount):
            guard amount > 0 else { throw ActorFailure(code: "invalid-amount", message: "cannot charge \(amount)") }
            guard !order.isEmpty else { throw ActorFailure(code: "invalid-order", message: "an order needs an id") }
            if let earlier = live(order) {
                guard earlier.amount == amount else {
                    throw ActorFailure(
                        code: "order-mismatch",
                        message: "order \(order) was paid with \(earlier.amount), not \(amount)")
                }
                return Reply(payment: earlier, repeated: true)
            }
            let transaction = try await context.run("transaction") { "tx-" + UUID().uuidString.lowercased() }
            let payment = Payment(order: order, amount: amount, transaction: transaction, processedAt: now)
            state.payments[order] = payment
            return Reply(payment: payment, repeated: false)
        case .lookup(let order):
            let kept = live(order)
            return Reply(payment: kept, repeated: kept != nil)
        }
    }
}
