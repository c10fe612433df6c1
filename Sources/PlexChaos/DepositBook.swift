/// One deposit of the load: a ledger, an amount and, as its idempotency key, the key it is filed under.
public struct Deposit: Sendable, Hashable {
    /// When the cluster acknowledged a deposit.
    public enum Acknowledgement: Sendable, Hashable {
        /// Never, so far: every attempt failed.
        case pending
        /// While the faults ran.
        case underLoad
        /// When every unacknowledged key was retried to completion at the end.
        case atCompletion
    }

    /// The ledger's key (the `ledger` actor's key).
    public var ledger: String
    /// The amount deposited (positive).
    public var amount: Int
    public var acknowledged: Acknowledgement = .pending
    /// Calls made with this key.
    public var attempts = 0

    /// Creates a deposit not yet acknowledged.
    public init(ledger: String, amount: Int) {
        self.ledger = ledger
        self.amount = amount
    }

    /// Whether the cluster acknowledged it at some point.
    public var isAcknowledged: Bool { acknowledged != .pending }
}

/// Every deposit a chaos run issued, by idempotency key, and which were acknowledged.
public struct DepositBook: Sendable, Hashable {
    public private(set) var deposits: [String: Deposit] = [:]

    /// Creates an empty book.
    public init() {}

    /// Files a new deposit under `key`.
    /// - Precondition: `key` is new (an idempotency key names one deposit).
    public mutating func issue(_ key: String, ledger: String, amount: Int) {
        precondition(deposits[key] == nil, "idempotency key \(key) issued twice")
        deposits[key] = Deposit(ledger: ledger, amount: amount)
    }

    /// Records a call made with `key`.
    public mutating func attempted(_ key: String) {
        deposits[key]?.attempts += 1
    }

    /// Records that a call with `key` was acknowledged; the first acknowledgement counts.
    public mutating func acknowledged(_ key: String, _ when: Deposit.Acknowledgement) {
        guard deposits[key]?.acknowledged == .pending else { return }
        deposits[key]?.acknowledged = when
    }

    /// Keys whose deposits were never acknowledged, sorted.
    public var pending: [String] { deposits.filter { !$0.value.isAcknowledged }.keys.sorted() }

    /// How many deposits were acknowledged (at any time).
    public var acknowledgedCount: Int { deposits.values.count { $0.isAcknowledged } }

    /// How many deposits were acknowledged while the faults ran.
    public var acknowledgedUnderLoad: Int { deposits.values.count { $0.acknowledged == .underLoad } }

    /// The ledgers deposits went to, sorted.
    public var ledgers: [String] { Set(deposits.values.map(\.ledger)).sorted() }

    /// The deposits to `ledger`, by key.
    public func deposits(to ledger: String) -> [String: Deposit] {
        deposits.filter { $0.value.ledger == ledger }
    }
}
