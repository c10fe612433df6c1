internal import Synchronization

/// The load: callers making idempotent deposits through every node; at the end, the retries that complete
/// every key, and the balance reads.
extension ChaosRun {
    /// Runs every caller until the run stops.
    func runCallers() async {
        await withTaskGroup(of: Void.self) { group in
            for caller in 0..<(configuration.nodes * configuration.callersPerNode) {
                group.addTask { await self.runCaller(caller) }
            }
        }
    }

    /// One caller: deposits of 1 to 9 to random ledgers, each under a new idempotency key, through node
    /// `caller % nodes`. A failed call is retried with the same key a few times; a key still unacknowledged
    /// then is left for the end.
    private func runCaller(_ caller: Int) async {
        var generator = SeededGenerator.stream(UInt64(caller + 1), of: configuration.seed)
        let node = callers[caller % callers.count]
        let ledgers = configuration.ledgerKeys
        var sequence = 0
        while !stopping.load(ordering: .relaxed) {
            let key = "c\(caller)-\(sequence)"
            sequence += 1
            let ledger = ledgers.randomElement(using: &generator)!
            let amount = Int.random(in: 1...9, using: &generator)
            book.update { $0.issue(key, ledger: ledger, amount: amount) }
            for _ in 0..<3 where !stopping.load(ordering: .relaxed) {
                book.update { $0.attempted(key) }
                do {
                    try await node.deposit(amount, to: ledger, key: key, timeout: .seconds(2))
                    book.update { $0.acknowledged(key, .underLoad) }
                    break
                } catch {
                    book.failed()
                    try? await Task.sleep(for: .milliseconds(100))
                }
            }
        }
    }

    /// Retries every unacknowledged key, through each node in turn, until it is acknowledged or `deadline`.
    func completePending(until deadline: ContinuousClock.Instant) async {
        let pending = book.snapshot.pending
        log("completing \(pending.count) unacknowledged keys")
        let deposits = book.snapshot.deposits
        let queue = WorkQueue(pending)
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    while let key = queue.next(), let deposit = deposits[key] {
                        var attempt = worker
                        while ContinuousClock.now < deadline {
                            let node = self.callers[attempt % self.callers.count]
                            attempt += 1
                            self.book.update { $0.attempted(key) }
                            do {
                                try await node.deposit(
                                    deposit.amount, to: deposit.ledger, key: key, timeout: .seconds(3))
                                self.book.update { $0.acknowledged(key, .atCompletion) }
                                break
                            } catch {
                                try? await Task.sleep(for: .milliseconds(250))
                            }
                        }
                    }
                }
            }
        }
        let left = book.snapshot.pending.count
        log("completion done: \(pending.count - left) completed, \(left) could not be")
    }

    /// The balance of `ledger` read through every node (each retried until it answers or `deadline`).
    func readings(of ledger: String, until deadline: ContinuousClock.Instant) async -> [String: LedgerObservation
        .Reading?]
    {
        var readings: [String: LedgerObservation.Reading?] = [:]
        for (index, caller) in callers.enumerated() {
            var reading: LedgerObservation.Reading?
            var lastError: (any Error)?
            repeat {
                do {
                    reading = try await caller.balance(of: ledger, timeout: .seconds(3))
                } catch {
                    lastError = error
                    try? await Task.sleep(for: .milliseconds(250))
                }
            } while reading == nil && ContinuousClock.now < deadline
            if reading == nil {
                log("\(ledger): cannot be read through \(cluster.ids[index]): \(lastError.map { "\($0)" } ?? "")")
            }
            readings[cluster.ids[index]] = .some(reading)
        }
        return readings
    }
}

/// Keys handed out one at a time to concurrent workers.
final class WorkQueue: Sendable {
    private let keys: Mutex<[String]>

    init(_ keys: [String]) {
        self.keys = Mutex(keys.reversed())
    }

    func next() -> String? { keys.withLock { $0.popLast() } }
}
