internal import PlexCore

/// How an activity's failed attempts are retried: exponential backoff between attempts, a cap on attempts and
/// on time, and errors that are never retried.
///
/// The delay before attempt *n* + 1 is `initialInterval × backoffCoefficient^(n − 1)`, capped at
/// `maximumInterval`, then shortened by up to `jitter` of itself (so many instances failing together do not
/// retry together). The time of the next attempt is journaled, so a backoff survives a restart of the node and
/// ends at the journaled time.
///
/// ```swift
/// let charge = try await context.activity(ChargeCard.self, order.payment,
///     retry: RetryPolicy(initialInterval: .seconds(1), backoffCoefficient: 2, maximumAttempts: 5))
/// ```
public struct RetryPolicy: Sendable, Hashable, Codable {
    /// The delay before the second attempt. Default: 1 s.
    public var initialInterval: Duration
    /// What each delay is multiplied by for the next one. Default: 2.
    public var backoffCoefficient: Double
    /// The longest delay between two attempts. Default: 100 × ``initialInterval``.
    public var maximumInterval: Duration?
    /// How many attempts in all, the first included; `nil` for no limit. Default: 5.
    public var maximumAttempts: Int?
    /// Errors that fail the activity at once: matched against the thrown error's type name (as
    /// ``PlexCore/EffectLog/Failure/typeName`` records it) and against an ``PlexCore/ActorFailure``'s code.
    public var nonRetryableErrors: Set<String>
    /// The fraction (0 to 1) of each delay that is randomly taken off it. Default: 0.
    public var jitter: Double
    /// How long one attempt may run before it counts as failed (and is cancelled). Default: none.
    public var startToCloseTimeout: Duration?
    /// How long all attempts together may take, from the first attempt's start; no attempt starts after it.
    /// Default: none.
    public var overallTimeout: Duration?

    /// Creates a policy; every parameter has a default.
    public init(
        initialInterval: Duration = .seconds(1), backoffCoefficient: Double = 2, maximumInterval: Duration? = nil,
        maximumAttempts: Int? = 5, nonRetryableErrors: Set<String> = [], jitter: Double = 0,
        startToCloseTimeout: Duration? = nil, overallTimeout: Duration? = nil
    ) {
        self.initialInterval = initialInterval
        self.backoffCoefficient = backoffCoefficient
        self.maximumInterval = maximumInterval
        self.maximumAttempts = maximumAttempts
        self.nonRetryableErrors = nonRetryableErrors
        self.jitter = jitter
        self.startToCloseTimeout = startToCloseTimeout
        self.overallTimeout = overallTimeout
    }

    /// The default policy: up to 5 attempts, 1 s, 2 s, 4 s, 8 s apart.
    public static let `default` = RetryPolicy()

    /// One attempt only.
    public static let never = RetryPolicy(maximumAttempts: 1)

    /// The policy's values checked: a clear message for the first that makes no sense.
    func validate() throws(WorkflowError) {
        func fail(_ what: String) throws(WorkflowError) {
            throw WorkflowError(.invalidArgument, "retry policy: \(what)")
        }
        if initialInterval < .zero { try fail("initialInterval must not be negative") }
        if !(backoffCoefficient >= 1) || !backoffCoefficient.isFinite { try fail("backoffCoefficient must be ≥ 1") }
        if let maximumInterval, maximumInterval < initialInterval {
            try fail("maximumInterval must be at least initialInterval")
        }
        if let maximumAttempts, maximumAttempts < 1 { try fail("maximumAttempts must be at least 1") }
        if !(0...1).contains(jitter) { try fail("jitter must be between 0 and 1") }
        if let startToCloseTimeout, startToCloseTimeout <= .zero { try fail("startToCloseTimeout must be positive") }
        if let overallTimeout, overallTimeout <= .zero { try fail("overallTimeout must be positive") }
    }

    /// The delay in milliseconds after failed attempt `attempt` (1 for the first), before jitter.
    func baseDelayMilliseconds(afterAttempt attempt: Int) -> Int64 {
        let initial = Double(initialInterval.milliseconds)
        let cap = Double((maximumInterval ?? initialInterval * 100).milliseconds)
        let exponent = Double(max(0, attempt - 1))
        let delay = min(cap, initial * pow(backoffCoefficient, exponent))
        return Int64(delay.rounded())
    }

    /// The delay after failed attempt `attempt`, with jitter drawn from `unit` (a number in 0..<1).
    func delayMilliseconds(afterAttempt attempt: Int, unit: Double) -> Int64 {
        let base = baseDelayMilliseconds(afterAttempt: attempt)
        return base - Int64((Double(base) * jitter * unit).rounded(.down))
    }

    /// Whether `failure` may be retried under this policy.
    func isRetryable(_ failure: EffectLog.Failure) -> Bool {
        if failure.typeName == WorkflowError.nonRetryableTypeName { return false }
        if nonRetryableErrors.contains(failure.typeName) { return false }
        if let code = failure.code, nonRetryableErrors.contains(code) { return false }
        return true
    }
}

extension Duration {
    /// Whole milliseconds (rounded down; 0 for a negative duration).
    var milliseconds: Int64 { Int64(clamping: clampedNanoseconds / 1_000_000) }
}

private func pow(_ base: Double, _ exponent: Double) -> Double {
    var result = 1.0
    var remaining = Int(exponent)
    while remaining > 0 {
        result *= base
        remaining -= 1
        if result > 1e18 { return result }
    }
    return result
}
