internal import Crypto
internal import FoundationEssentials
public import PlexSpaces

#if canImport(Glibc)
    import Glibc
#endif

/// Scenario 2, Restate's payment with journaled side effects: validate the request, charge the card through a
/// payment API with an idempotency key, record the payment, each a journaled step.
///
/// The instance id is the payment request's id, so sending the same request twice starts it once and returns
/// the same transaction. A step whose completion was journaled never runs again after a crash; a charge that
/// was under way when the node died runs again with the same idempotency key (the step's key), so the
/// payment API applies it once and returns the same transaction.
///
/// ```sh
/// plex workflow start payment pay-1 --input '{"account":"acct-7","amount":25}'
/// plex workflow result pay-1
/// ```
public struct PaymentWorkflow: Workflow {
    public static let typeName = "payment"

    public struct Input: Codable, Sendable {
        public var account: String
        public var amount: Int
        public init(account: String, amount: Int) {
            self.account = account
            self.amount = amount
        }
    }

    public init() {}

    public func run(_ input: Input, context: WorkflowContext) async throws -> String {
        _ = try await context.run("validate") { _ in
            guard input.amount > 0, !input.account.isEmpty else {
                throw WorkflowError.nonRetryable("invalid payment: \(input.amount) to '\(input.account)'")
            }
            return true
        }
        let transaction = try await context.activity(
            ChargeCard.self, .init(account: input.account, amount: input.amount))
        _ = try await context.activity(
            RecordPayment.self, .init(request: context.instanceID, transaction: transaction, amount: input.amount))
        return transaction
    }
}

/// Charges a card through the ``FakePaymentAPI`` with the step's idempotency key.
public struct ChargeCard: Activity {
    public static let name = "charge-card"

    public struct Input: Codable, Sendable {
        public var account: String
        public var amount: Int
    }

    let api: FakePaymentAPI

    public init(api: FakePaymentAPI) {
        self.api = api
    }

    public func run(_ input: Input, context: ActivityContext) async throws -> String {
        let transaction = try api.charge(account: input.account, amount: input.amount, key: context.idempotencyKey)
        // For crash tests: the charge has reached the API, its completion is not journaled yet.
        while api.isHeld("after-charge") { try await Task.sleep(for: .milliseconds(20)) }
        return transaction
    }
}

/// Records a payment in the ``FakePaymentAPI``'s database (an upsert by request id).
public struct RecordPayment: Activity {
    public static let name = "record-payment"

    public struct Input: Codable, Sendable {
        public var request: String
        public var transaction: String
        public var amount: Int
    }

    let api: FakePaymentAPI

    public init(api: FakePaymentAPI) {
        self.api = api
    }

    public func run(_ input: Input, context: ActivityContext) async throws -> Bool {
        // For crash tests: the charge is journaled, the record not made yet.
        while api.isHeld("before-record") { try await Task.sleep(for: .milliseconds(20)) }
        try api.record(request: input.request, transaction: input.transaction, amount: input.amount)
        return true
    }
}

/// A stand-in for a card processor and a database that lives in a directory, so it outlasts the node
/// processes that call it (and counts across them): every charge request is logged as received; each
/// idempotency key is applied once, and a repeat returns the transaction it made.
public struct FakePaymentAPI: Sendable {
    /// Where it keeps its state.
    public let directory: String

    /// An API kept in `directory` (created if missing).
    public init(directory: String) {
        self.directory = directory
        try? FileManager.default.createDirectory(atPath: "\(directory)/charges", withIntermediateDirectories: true)
        try? FileManager.default.createDirectory(atPath: "\(directory)/records", withIntermediateDirectories: true)
    }

    /// The directory of the API the example nodes use: `$PLEX_EXAMPLE_PAYMENT_API`, or one under the
    /// temporary directory.
    public static var examples: FakePaymentAPI {
        let directory =
            ProcessInfo.processInfo.environment["PLEX_EXAMPLE_PAYMENT_API"]
            ?? FileManager.default.temporaryDirectory.path + "/plex-example-payment-api"
        return FakePaymentAPI(directory: directory)
    }

    /// Charges `amount` to `account` once per `key`, and returns the transaction id. A repeated key returns the
    /// transaction it made; with another account or amount it is refused (as card processors refuse a reused
    /// idempotency key with other parameters).
    public func charge(account: String, amount: Int, key: String) throws -> String {
        try locked {
            try DurableFiles.append("\(key) \(account) \(amount)\n", to: "\(directory)/received.log")
            let path = "\(directory)/charges/\(Self.fileName(key))"
            if let earlier = try? String(contentsOfFile: path, encoding: .utf8) {
                let fields = earlier.split(separator: " ").map(String.init)
                guard fields.count == 3, fields[1] == account, fields[2] == "\(amount)" else {
                    throw WorkflowError.nonRetryable(
                        "idempotency key \(key) was used for another charge (\(earlier)), not \(account) \(amount)")
                }
                return fields[0]
            }
            let transaction = "tx-" + UUID().uuidString.lowercased().prefix(13)
            try DurableFiles.write(Array("\(transaction) \(account) \(amount)".utf8), to: path)
            return String(transaction)
        }
    }

    /// Records the payment of request `request` (again: the same record).
    public func record(request: String, transaction: String, amount: Int) throws {
        try locked {
            try DurableFiles.write(
                Array("\(transaction) \(amount)".utf8), to: "\(directory)/records/\(Self.fileName(request))")
        }
    }

    /// The idempotency keys of every charge request received, in order (repeats included).
    public var received: [String] {
        let text = (try? String(contentsOfFile: "\(directory)/received.log", encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map { String($0.split(separator: " ")[0]) }
    }

    /// The charges applied: how many distinct keys were charged.
    public var applied: Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "\(directory)/charges").count) ?? 0
    }

    /// The recorded payment of `request` (`<transaction> <amount>`), if any.
    public func recorded(_ request: String) -> String? {
        try? String(contentsOfFile: "\(directory)/records/\(Self.fileName(request))", encoding: .utf8)
    }

    /// Whether a test holds the API at `point` (a file named `hold-<point>` exists).
    public func isHeld(_ point: String) -> Bool {
        FileManager.default.fileExists(atPath: "\(directory)/hold-\(point)")
    }

    /// Holds (or releases) the API at `point`.
    public func hold(_ point: String, _ held: Bool) {
        let path = "\(directory)/hold-\(point)"
        if held {
            _ = FileManager.default.createFile(atPath: path, contents: nil)
        } else {
            try? FileManager.default.removeItem(atPath: path)
        }
    }

    // MARK: Files

    /// A file name for any key, of a fixed length: the SHA-256 of its UTF-8 bytes, in hex.
    private static func fileName(_ key: String) -> String {
        DurableFiles.hex(SHA256.hash(data: Array(key.utf8)))
    }

    /// Runs `body` holding an exclusive lock on the directory (across processes).
    private func locked<T>(_ body: () throws -> T) throws -> T {
        let fd = open("\(directory)/lock", O_CREAT | O_RDWR, 0o644)
        guard fd >= 0 else { throw ActorFailure(code: "io", message: "cannot open \(directory)/lock") }
        defer { close(fd) }
        flock(fd, LOCK_EX)
        defer { flock(fd, LOCK_UN) }
        return try body()
    }
}
