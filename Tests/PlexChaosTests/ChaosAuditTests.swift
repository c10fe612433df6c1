import PlexChaos
import Testing

/// The chaos run's verdict: lost, doubled and forked deposits are found from the book and what the end of
/// the run observed, and a clean run passes.
@Suite("ChaosAudit")
struct ChaosAuditTests {
    /// Three deposits to `a` (5, 7 and 9), the last never acknowledged; one to `b` (3).
    func book(acknowledgingAll: Bool = false) -> DepositBook {
        var book = DepositBook()
        book.issue("k1", ledger: "a", amount: 5)
        book.issue("k2", ledger: "a", amount: 7)
        book.issue("k3", ledger: "a", amount: 9)
        book.issue("k4", ledger: "b", amount: 3)
        book.acknowledged("k1", .underLoad)
        book.acknowledged("k2", .atCompletion)
        book.acknowledged("k4", .underLoad)
        if acknowledgingAll { book.acknowledged("k3", .atCompletion) }
        return book
    }

    func read(_ owner: String, _ balance: Int) -> LedgerObservation.Reading? {
        LedgerObservation.Reading(owner: owner, balance: balance)
    }

    /// Every node reads `balance` from `owner`; only `owner`'s journal holds the ledger, with `keys`.
    func agreed(_ owner: String, _ balance: Int, keys: [String: Int]) -> LedgerObservation {
        LedgerObservation(
            readings: ["node-1": read(owner, balance), "node-2": read(owner, balance)], journals: [owner: keys])
    }

    @Test("a clean run passes: every deposit once, balances match, one holder each")
    func clean() {
        let audit = ChaosAudit(
            book: book(acknowledgingAll: true),
            observations: [
                "a": agreed("node-1", 21, keys: ["k1": 1, "k2": 1, "k3": 1]),
                "b": agreed("node-2", 3, keys: ["k4": 1]),
            ])
        #expect(audit.passed)
        #expect(audit.acknowledged == 4)
        #expect(audit.lost.isEmpty && audit.doubled.isEmpty && audit.forks.isEmpty && audit.unfinished.isEmpty)
        #expect(
            audit.summary(seconds: 12, faults: 3)
                == "chaos: seconds=12 faults=3 acked=4 lost=0 doubled=0 forks=0 workflows=0 wf-lost=0 wf-unfinished=0")
    }

    @Test("an acknowledged deposit missing from the owner's history is lost; an unacknowledged one may be missing")
    func lost() {
        let audit = ChaosAudit(
            book: book(),
            observations: ["a": agreed("node-1", 7, keys: ["k2": 1]), "b": agreed("node-2", 3, keys: ["k4": 1])])
        #expect(audit.lost == ["k1"])
        #expect(audit.doubled.isEmpty)
        #expect(audit.unfinished == ["k3"])
        #expect(!audit.passed)
        #expect(audit.summary(seconds: 1, faults: 0).contains("acked=3 lost=1 doubled=0 forks=0 workflows=0"))
    }

    @Test("a key the history holds twice is doubled, acknowledged or not")
    func doubled() {
        let audit = ChaosAudit(
            book: book(),
            observations: [
                "a": agreed("node-1", 5 + 7 + 7 + 9 + 9, keys: ["k1": 1, "k2": 2, "k3": 2]),
                "b": agreed("node-2", 3, keys: ["k4": 1]),
            ])
        #expect(audit.doubled == ["k2", "k3"])
        #expect(audit.lost.isEmpty)
    }

    @Test("a balance that its history does not explain counts once, as a shortfall or an excess")
    func unexplainedBalance() {
        let short = ChaosAudit(
            book: book(acknowledgingAll: true),
            observations: [
                "a": agreed("node-1", 12, keys: ["k1": 1, "k2": 1, "k3": 1]),
                "b": agreed("node-2", 4, keys: ["k4": 1]),
            ])
        #expect(short.lost == ["a!shortfall"])
        #expect(short.doubled == ["b!excess"])
        #expect(short.findings.contains { $0.contains("balance 12 is 9 short") })
    }

    @Test("a ledger held live by two nodes' journals is a fork, even when the reads agree")
    func forkInJournals() {
        var observation = agreed("node-1", 3, keys: ["k4": 1])
        observation.journals["node-3"] = ["k4": 1]
        let audit = ChaosAudit(
            book: book(acknowledgingAll: true),
            observations: ["a": agreed("node-1", 21, keys: ["k1": 1, "k2": 1, "k3": 1]), "b": observation])
        #expect(audit.forks == ["b"])
        #expect(audit.lost.isEmpty && audit.doubled.isEmpty)
        #expect(audit.findings.contains { $0.contains("held live by node-1, node-3") })
    }

    @Test("reads through different nodes that disagree are a fork; the majority's reading is judged")
    func forkInReads() {
        let observation = LedgerObservation(
            readings: ["node-1": read("node-1", 3), "node-2": read("node-1", 3), "node-3": read("node-3", 0)],
            journals: ["node-1": ["k4": 1]])
        let audit = ChaosAudit(
            book: book(acknowledgingAll: true),
            observations: ["a": agreed("node-1", 21, keys: ["k1": 1, "k2": 1, "k3": 1]), "b": observation])
        #expect(audit.forks == ["b"])
        #expect(audit.lost.isEmpty, "node-1's reading, which two nodes gave, holds k4")
    }

    @Test("a copy kept aside as diverging is a fork that was caught; its deposits are judged by the history held")
    func forkKeptAside() {
        var observation = agreed("node-1", 3, keys: ["k4": 1])
        observation.keptAside["node-1"] = ["refused from node-2 (lineage 00, epoch 2, 1 entries)"]
        let audit = ChaosAudit(
            book: book(acknowledgingAll: true),
            observations: ["a": agreed("node-1", 21, keys: ["k1": 1, "k2": 1, "k3": 1]), "b": observation])
        #expect(audit.forks == ["b"])
        #expect(audit.lost.isEmpty)
        #expect(audit.findings.contains { $0.contains("node-1 kept a diverging copy aside, refused from node-2") })
    }

    @Test("a ledger that cannot be read loses its acknowledged deposits")
    func unreadable() {
        let audit = ChaosAudit(
            book: book(acknowledgingAll: true),
            observations: [
                "a": LedgerObservation(readings: ["node-1": nil, "node-2": nil]),
                "b": agreed("node-2", 3, keys: ["k4": 1]),
            ])
        #expect(audit.lost == ["k1", "k2", "k3"])
    }

    @Test("without the owner's journal, the balance alone decides, within what was acknowledged and attempted")
    func balanceOnly() {
        func judge(_ balance: Int) -> ChaosAudit {
            ChaosAudit(
                book: book(),
                observations: [
                    "a": LedgerObservation(readings: ["node-1": read("node-1", balance)]),
                    "b": agreed("node-2", 3, keys: ["k4": 1]),
                ])
        }
        #expect(judge(12).lost.isEmpty && judge(12).doubled.isEmpty, "k1 and k2 applied, k3 not")
        #expect(judge(21).lost.isEmpty && judge(21).doubled.isEmpty, "k3 applied too")
        #expect(judge(11).lost == ["a!shortfall"])
        #expect(judge(22).doubled == ["a!excess"])
    }

    @Test("a ledger observed but never deposited to passes when empty")
    func untouchedLedger() {
        let audit = ChaosAudit(
            book: DepositBook(), observations: ["z": LedgerObservation(readings: ["node-1": read("node-1", 0)])])
        #expect(audit.passed)
    }
}

@Suite("DepositBook")
struct DepositBookTests {
    @Test("the first acknowledgement counts; pending keys are those never acknowledged")
    func acknowledgements() {
        var book = DepositBook()
        book.issue("x", ledger: "a", amount: 1)
        book.issue("y", ledger: "b", amount: 2)
        book.attempted("x")
        book.attempted("x")
        book.acknowledged("x", .underLoad)
        book.acknowledged("x", .atCompletion)
        #expect(book.deposits["x"]?.acknowledged == .underLoad)
        #expect(book.deposits["x"]?.attempts == 2)
        #expect(book.pending == ["y"])
        #expect(book.acknowledgedCount == 1 && book.acknowledgedUnderLoad == 1)
        #expect(book.ledgers == ["a", "b"])
        #expect(book.deposits(to: "b").keys.sorted() == ["y"])
    }
}
