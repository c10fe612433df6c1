/// What the end of a chaos run found about one ledger, once every fault was healed and every key completed.
public struct LedgerObservation: Sendable, Hashable {
    /// A balance read through one node.
    public struct Reading: Sendable, Hashable {
        /// The node that answered as the ledger's owner (the reply's `node`).
        public var owner: String
        public var balance: Int

        public init(owner: String, balance: Int) {
            self.owner = owner
            self.balance = balance
        }
    }

    /// The balance read through each node, by the node the read went through; `nil`: the read failed.
    public var readings: [String: Reading?]
    /// For each node whose journal holds the ledger live (entries or a checkpoint, not handed away), how many
    /// of the ledger's applied messages carry each idempotency key.
    public var journals: [String: [String: Int]]
    /// Copies of the ledger that a node kept aside because they did not extend its history (another lineage),
    /// by node: one description each.
    public var keptAside: [String: [String]]

    /// Creates an observation.
    public init(
        readings: [String: Reading?] = [:], journals: [String: [String: Int]] = [:],
        keptAside: [String: [String]] = [:]
    ) {
        self.readings = readings
        self.journals = journals
        self.keptAside = keptAside
    }
}

/// The chaos run's verdict: from the deposits issued and what the end of the run observed, which acknowledged
/// deposits are lost, which deposits were applied twice, and which ledgers forked.
///
/// - A deposit is **lost** when it was acknowledged and its ledger's history (the journal of the node that owns
///   the ledger at the end) does not hold it, or when the ledger cannot be read at all.
/// - A deposit is **doubled** when that history holds its key more than once.
/// - A ledger **forked** when more than one node's journal holds it live (outside a recorded handoff, which
///   leaves a tombstone on the node that handed it away), when reads through different nodes disagree on
///   its owner or balance, or when a node kept a copy of it aside because it did not extend the history there
///   (two lineages of one ledger existed: a fork that was caught, whose deposits are not in the ledger).
/// - The balance is checked too: it must equal the sum of the deposits its history holds. A difference no
///   key explains counts once, as lost (short) or doubled (over), under a name that says so.
public struct ChaosAudit: Sendable, Hashable {
    /// Deposits acknowledged, while the faults ran or when completed at the end.
    public private(set) var acknowledged = 0
    /// Keys of lost deposits (and `ledger!shortfall` for a shortfall no key explains), sorted.
    public private(set) var lost: [String] = []
    /// Keys of doubled deposits (and `ledger!excess` for an excess no key explains), sorted.
    public private(set) var doubled: [String] = []
    /// Forked ledgers, sorted.
    public private(set) var forks: [String] = []
    /// Keys never acknowledged, even by the retries at the end: the run could not complete them.
    public private(set) var unfinished: [String] = []
    /// What was found, one sentence each, in ledger order.
    public private(set) var findings: [String] = []
    /// What became of the workflows started under the faults.
    public private(set) var workflows: WorkflowVerdict

    /// Judges `book` against `observations` (by ledger), with the `workflows` verdict.
    public init(book: DepositBook, observations: [String: LedgerObservation], workflows: WorkflowVerdict = .init()) {
        self.workflows = workflows
        acknowledged = book.acknowledgedCount
        unfinished = book.pending
        for ledger in Set(book.ledgers).union(observations.keys).sorted() {
            judge(ledger, deposits: book.deposits(to: ledger), observation: observations[ledger] ?? .init())
        }
        lost.sort()
        doubled.sort()
        if !unfinished.isEmpty {
            findings.append("\(unfinished.count) keys were never acknowledged, even when retried at the end")
        }
    }

    /// Whether nothing was lost, doubled or forked, every key was completed, and every workflow completed.
    public var passed: Bool {
        lost.isEmpty && doubled.isEmpty && forks.isEmpty && unfinished.isEmpty && workflows.passed
    }

    /// The run's one line: `chaos: seconds=S faults=F acked=N lost=L doubled=D forks=K workflows=W
    /// wf-lost=X wf-unfinished=Y` (the workflows: acknowledged starts, instances lost, instances that did not
    /// complete right or left a step without a trace).
    public func summary(seconds: Int, faults: Int) -> String {
        "chaos: seconds=\(seconds) faults=\(faults) acked=\(acknowledged) lost=\(lost.count) "
            + "doubled=\(doubled.count) forks=\(forks.count) workflows=\(workflows.started) "
            + "wf-lost=\(workflows.lost.count) wf-unfinished=\(workflows.unfinished.count + workflows.missingSteps.count)"
    }

    private mutating func judge(_ ledger: String, deposits: [String: Deposit], observation: LedgerObservation) {
        let holders = observation.journals.keys.sorted()
        let readings = observation.readings.sorted { $0.key < $1.key }
        let answered = readings.compactMap { via, reading in reading.map { (via, $0) } }
        if holders.count > 1 {
            forks.append(ledger)
            findings.append("\(ledger): forked: held live by \(holders.joined(separator: ", "))")
        } else if Set(answered.map(\.1)).count > 1 {
            forks.append(ledger)
            let views = answered.map { "via \($0.0): \($0.1.owner) says \($0.1.balance)" }
            findings.append("\(ledger): forked: reads disagree (\(views.joined(separator: "; ")))")
        } else if !observation.keptAside.isEmpty {
            forks.append(ledger)
        }
        for (node, copies) in observation.keptAside.sorted(by: { $0.key < $1.key }) {
            for copy in copies { findings.append("\(ledger): forked: \(node) kept a diverging copy aside, \(copy)") }
        }
        let acknowledged = deposits.filter { $0.value.isAcknowledged }
        // The reading most nodes gave (the first node's on a tie) is the ledger's state.
        let counted = Dictionary(answered.map { ($0.1, 1) }, uniquingKeysWith: +)
        guard let reference = answered.map(\.1).max(by: { counted[$0]! < counted[$1]! }) else {
            guard !acknowledged.isEmpty else { return }
            lost += acknowledged.keys
            findings.append(
                "\(ledger): unreadable through every node; its \(acknowledged.count) deposits count as lost")
            return
        }
        guard let applied = observation.journals[reference.owner] else {
            judgeByBalance(ledger, reference, deposits: deposits)
            return
        }
        var predicted = 0
        for (key, deposit) in deposits {
            let count = applied[key] ?? 0
            predicted += deposit.amount * count
            if count == 0 && deposit.isAcknowledged { lost.append(key) }
            if count > 1 { doubled.append(key) }
        }
        let lostHere = acknowledged.keys.filter { (applied[$0] ?? 0) == 0 }.sorted()
        if !lostHere.isEmpty {
            findings.append(
                "\(ledger): \(lostHere.count) acknowledged deposits missing from \(reference.owner)'s history"
                    + " (\(lostHere.prefix(5).joined(separator: ", "))\(lostHere.count > 5 ? ", …" : ""))")
        }
        let doubledHere = deposits.keys.filter { (applied[$0] ?? 0) > 1 }.sorted()
        if !doubledHere.isEmpty {
            findings.append(
                "\(ledger): \(doubledHere.count) deposits applied more than once"
                    + " (\(doubledHere.prefix(5).joined(separator: ", ")))")
        }
        let strangers = applied.keys.filter { deposits[$0] == nil }.sorted()
        if !strangers.isEmpty {
            findings.append("\(ledger): history holds keys no deposit used: \(strangers.prefix(5))")
        }
        if reference.balance < predicted {
            lost.append("\(ledger)!shortfall")
            findings.append(
                "\(ledger): balance \(reference.balance) is \(predicted - reference.balance) short of the deposits "
                    + "its history holds (\(predicted))")
        } else if reference.balance > predicted {
            doubled.append("\(ledger)!excess")
            findings.append(
                "\(ledger): balance \(reference.balance) exceeds the deposits its history holds (\(predicted)) by "
                    + "\(reference.balance - predicted)")
        }
    }

    /// Without the owner's journal, only the balance can tell: it must cover every acknowledged deposit and
    /// exceed them by no more than the unacknowledged ones.
    private mutating func judgeByBalance(
        _ ledger: String, _ reference: LedgerObservation.Reading, deposits: [String: Deposit]
    ) {
        let acknowledgedSum = deposits.values.filter(\.isAcknowledged).map(\.amount).reduce(0, +)
        let pendingSum = deposits.values.filter { !$0.isAcknowledged }.map(\.amount).reduce(0, +)
        findings.append("\(ledger): no journal of its owner \(reference.owner) holds it; judged by its balance only")
        if reference.balance < acknowledgedSum {
            lost.append("\(ledger)!shortfall")
            findings.append(
                "\(ledger): balance \(reference.balance) is short of the acknowledged deposits (\(acknowledgedSum))")
        } else if reference.balance > acknowledgedSum + pendingSum {
            doubled.append("\(ledger)!excess")
            findings.append(
                "\(ledger): balance \(reference.balance) exceeds every deposit made (\(acknowledgedSum + pendingSum))")
        }
    }
}
