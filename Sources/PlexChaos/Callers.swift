internal import PlexExamples
public import PlexSpaces
internal import Synchronization

/// A caller's connection to one node: made when first needed, and made again after the node dropped it
/// (killed, restarted). Calls go through the node, which routes them to the ledger's owner.
public actor NodeCaller {
    public nonisolated let address: PeerAddress
    let clusterName: String
    let secret: [UInt8]
    private var client: PlexClient?

    /// Creates a caller of the node at `address`; connects on first use.
    public init(address: PeerAddress, clusterName: String, secret: String) {
        self.address = address
        self.clusterName = clusterName
        self.secret = Array(secret.utf8)
    }

    /// The connected client, connecting if needed; `nil` if the node cannot be reached now.
    public func connected() async -> PlexClient? {
        if let client, client.isConnected { return client }
        if let client {
            self.client = nil
            await client.close()
        }
        guard let fresh = try? await PlexClient.connect(to: address, clusterName: clusterName, secret: secret) else {
            return nil
        }
        // Another call of this caller may have connected meanwhile (the actor is reentrant at `await`).
        if let current = client, current.isConnected {
            await fresh.close()
            return current
        }
        client = fresh
        return fresh
    }

    /// Deposits `amount` to `ledger` with the idempotency key `key`.
    /// - Throws: ``CallError``, or ``CallError`` `nodeUnavailable` when the node cannot be reached.
    public func deposit(_ amount: Int, to ledger: String, key: String, timeout: Duration) async throws {
        guard let client = await connected() else {
            throw CallError(.nodeUnavailable, "cannot connect to \(address)")
        }
        _ = try await client.ask(
            Ledger.self, key: ledger, .deposit(amount: amount), timeout: timeout, idempotencyKey: key)
    }

    /// Reads `ledger`'s balance: the owner that answered, and the balance.
    public func balance(of ledger: String, timeout: Duration) async throws -> LedgerObservation.Reading {
        guard let client = await connected() else {
            throw CallError(.nodeUnavailable, "cannot connect to \(address)")
        }
        let reply = try await client.ask(Ledger.self, key: ledger, .balance, timeout: timeout)
        return LedgerObservation.Reading(owner: reply.node, balance: reply.balance)
    }

    /// The cluster as this node sees it; `nil` if it cannot be asked now.
    public func status() async -> ClusterStatus? {
        guard let client = await connected() else { return nil }
        return try? await client.status(timeout: .seconds(2))
    }

    /// Closes the connection.
    public func close() async {
        if let client {
            self.client = nil
            await client.close()
        }
    }
}

/// The deposits of a chaos run, shared by its callers.
public final class SharedBook: Sendable {
    private let book = Mutex(DepositBook())
    private let failures = Atomic<Int>(0)

    public init() {}

    public func update(_ change: (inout DepositBook) -> Void) { book.withLock { change(&$0) } }
    public var snapshot: DepositBook { book.withLock { $0 } }
    public func failed() { failures.add(1, ordering: .relaxed) }
    public var failedCalls: Int { failures.load(ordering: .relaxed) }
}
