internal import FoundationEssentials
public import PlexSpaces

/// Scenario 4, Cloudflare's Durable Objects counter: `increment`, `decrement` (never below zero), `get`, and an
/// alarm that resets the count at a set time.
///
/// A durable virtual actor: each change is journaled before its reply leaves, so the count survives a crash
/// or restart of its node and moves with the actor when its owner changes; it is activated by the first call
/// and deactivated when idle. The alarm is a durable reminder: it fires at its time even if the node
/// restarted meanwhile, on whichever node owns the counter then.
///
/// ```sh
/// plex call durable-counter/c1 '{"increment":{"by":1}}'      # {"node":"node-2","value":1}
/// plex call durable-counter/c1 '{"decrement":{"by":5}}'      # error below-zero: the count is 1
/// plex call durable-counter/c1 '{"resetAfter":{"seconds":60}}'
/// ```
public struct DurableCounter: VirtualActor {
    public static let typeName = "durable-counter"
    public static let durability = Durability.durable(checkpointEvery: 100)
    /// The error code of a decrement that would take the count below zero.
    public static let belowZero = "below-zero"
    /// The furthest ahead an alarm can be set: ten years, in seconds.
    public static let longestAlarm = 315_360_000

    public struct State: ActorState {
        public var value = 0
        /// When the alarm resets the count (milliseconds since 1970), if one is set.
        public var resetAt: Int64?
        public init() {}
    }

    public enum Request: Codable, Sendable {
        case increment(by: Int)
        case decrement(by: Int)
        case get
        /// Sets the alarm: the count goes back to zero `seconds` from now (replacing an alarm set before).
        case resetAfter(seconds: Int)
        case cancelReset
        /// The alarm firing (sent by the counter's own reminder only; refused from a client).
        case reset
    }

    /// The count after the request, when the alarm resets it, and the node that answered.
    public struct Reply: Codable, Sendable, Hashable {
        public var value: Int
        public var resetAt: Int64?
        public var node: String
        public init(value: Int, resetAt: Int64? = nil, node: String) {
            self.value = value
            self.resetAt = resetAt
            self.node = node
        }
    }

    public init() {}

    public func handle(_ request: Request, state: inout State, context: ActorContext) async throws -> Reply {
        switch request {
        case .increment(let amount):
            guard amount >= 0 else {
                throw ActorFailure(code: "invalid-amount", message: "cannot increment by \(amount)")
            }
            let (sum, overflow) = state.value.addingReportingOverflow(amount)
            guard !overflow else {
                throw ActorFailure(code: "overflow", message: "cannot increment \(state.value) by \(amount)")
            }
            state.value = sum
        case .decrement(let amount):
            guard amount >= 0 else {
                throw ActorFailure(code: "invalid-amount", message: "cannot decrement by \(amount)")
            }
            guard state.value >= amount else {
                throw ActorFailure(
                    code: Self.belowZero, message: "cannot decrement by \(amount): the count is \(state.value)")
            }
            state.value -= amount
        case .get: break
        case .resetAfter(let seconds):
            guard (0...Self.longestAlarm).contains(seconds) else {
                throw ActorFailure(
                    code: "invalid-amount", message: "an alarm is set 0 to \(Self.longestAlarm) s ahead, not \(seconds)"
                )
            }
            try await context.schedule(Request.reset, after: .seconds(seconds), name: "reset")
            let now = try await context.now()
            state.resetAt = Int64((now.timeIntervalSince1970 * 1000).rounded()) + Int64(seconds) * 1000
        case .cancelReset:
            try context.cancelReminder("reset")
            state.resetAt = nil
        case .reset:
            // The alarm's own message (its reminder's delivery), not a client's: clients set an alarm.
            guard context.idempotencyKey?.hasPrefix("plex.reminder/reset/") == true else {
                throw ActorFailure(code: "invalid-request", message: "reset is sent by the alarm: use resetAfter")
            }
            state.value = 0
            state.resetAt = nil
        }
        return Reply(value: state.value, resetAt: state.resetAt, node: context.nodeID.rawValue)
    }
}
