import PlexExamples
import PlexJournal
import PlexSpaces
import PlexTestKit
import Synchronization
import Testing

/// How a test stops a node before restarting it.
enum StopKind: String, CaseIterable, CustomStringConvertible {
    /// ``TestCluster/crash(_:)``: as `kill -9`, the journal abandoned mid-flight.
    case crash
    /// ``TestCluster/stop(_:)``: a clean stop, activations checkpointed and the journal closed.
    case cleanStop

    var description: String { rawValue }

    func stop(_ index: Int, of cluster: TestCluster) async {
        switch self {
        case .crash: await cluster.crash(index)
        case .cleanStop: await cluster.stop(index)
        }
    }
}

/// Counts shared by the workers of a test.
final class Tally: Sendable {
    private let storage = Mutex(0)
    func add() { storage.withLock { $0 += 1 } }
    var value: Int { storage.withLock { $0 } }
}

@Suite("Durable actors: stops under load", .timeLimit(.minutes(3)))
struct CrashClusterTests {
    @Test(
        "stopped three times under load, callers retrying with their keys: every deposit applies exactly once",
        arguments: StopKind.allCases, TestTransport.allCases)
    func underLoad(stop: StopKind, transport: TestTransport) async throws {
        try await withTestCluster(
            nodes: 2, transport: transport,
            setup: { $0.journal.unfiledBytes = 2048 },  // crashes land with entries filed, unfiled, and in between
            register: {
                $0.registerExamples()
                $0.register(ShortLedger.self)
            }
        ) { cluster in
            let caller = cluster.node(0)
            let owner = cluster.node(1).nodeID
            let ledgers = ledgerKeys(ownedBy: owner, on: caller, count: 2)
            let workers = 8
            let depositsPerWorker = 30
            let acknowledged = Tally()
            try await withThrowingTaskGroup(of: Void.self) { group in
                for worker in 0..<workers {
                    group.addTask {
                        let key = ledgers[worker / 2 % ledgers.count]
                        for n in 0..<depositsPerWorker {
                            let clock = ContinuousClock()
                            let deadline = clock.now + .seconds(60)
                            while true {
                                do {
                                    // Ledger checkpoints every 100 messages, ShortLedger every 5 (pruning).
                                    if worker % 2 == 0 {
                                        _ = try await caller.actor(Ledger.self, key: key).ask(
                                            .deposit(amount: 1), timeout: .seconds(2), idempotencyKey: "w\(worker)-\(n)"
                                        )
                                    } else {
                                        _ = try await caller.actor(ShortLedger.self, key: key).ask(
                                            .deposit(amount: 1), timeout: .seconds(2), idempotencyKey: "w\(worker)-\(n)"
                                        )
                                    }
                                    acknowledged.add()
                                    break
                                } catch {
                                    guard clock.now < deadline else { throw error }
                                    try await Task.sleep(for: .milliseconds(10))  // pacing between retries
                                }
                            }
                        }
                    }
                }
                for round in 1...3 {
                    let target = workers * depositsPerWorker * round / 4
                    try await eventually("\(target) deposits acknowledged", within: .seconds(60)) {
                        acknowledged.value >= target
                    }
                    await stop.stop(1, of: cluster)
                    let restarted = try await cluster.restart(1)
                    try await cluster.waitUntil(caller, isConnectedTo: restarted)
                }
                try await group.waitForAll()
            }
            #expect(acknowledged.value == workers * depositsPerWorker)
            // Each ledger got its deposits exactly once: none lost, none applied twice by a retry.
            let perLedger = workers / (2 * ledgers.count) * depositsPerWorker
            for key in ledgers {
                let ledger = try await caller.actor(Ledger.self, key: key).ask(.balance)
                let short = try await caller.actor(ShortLedger.self, key: key).ask(.balance)
                #expect(ledger.balance == perLedger && ledger.operations == perLedger, "ledger/\(key)")
                #expect(short.balance == perLedger && short.operations == perLedger, "short-ledger/\(key)")
                #expect(ledger.node == owner.rawValue && short.node == owner.rawValue)
            }
        }
    }
}

/// Keys that `owner` owns for both `Ledger` and `ShortLedger`, as `node` sees the ring.
func ledgerKeys(ownedBy owner: NodeID, on node: PlexNode, count: Int) -> [String] {
    var result: [String] = []
    var i = 0
    while result.count < count {
        let key = "s\(i)"
        if node.owner(of: ActorID(typeName: Ledger.typeName, key: key)) == owner,
            node.owner(of: ActorID(typeName: ShortLedger.typeName, key: key)) == owner
        {
            result.append(key)
        }
        i += 1
    }
    return result
}
