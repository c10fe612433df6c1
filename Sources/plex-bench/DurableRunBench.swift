import Foundation
import PlexExamples
import PlexSpaces

/// A ledger whose deposits each run one side effect (trivial, journaled with the message): the
/// cost of `context.run` and of the output gate that makes it wait for the actor's earlier messages.
struct ReceiptLedger: VirtualActor {
    static let typeName = "bench-receipt-ledger"
    static let durability = Ledger.durability
    typealias State = Ledger.State
    typealias Request = Ledger.Request

    func handle(_ request: Request, state: inout State, context: ActorContext) async throws -> Int {
        if case .deposit(let amount) = request {
            let credited = try await context.run("credit") { amount }
            state.balance += credited
            state.operations += 1
        }
        return state.balance
    }
}

extension All {
    /// Durable `ask` with one `context.run` per message, the same shape as the plain durable line: 256
    /// callers over 1,000 actors on one node (synchronous=FULL).
    func durableWithRun(window: Duration) async throws {
        let clock = ContinuousClock()
        var rates: [Double] = []
        var p99s: [Double] = []
        var p50s: [Double] = []
        for run in 0..<runs {
            let directory = temporaryDirectory("durable-run-\(run)")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let node = try await PlexNode.start(
                NodeConfiguration(dataDirectory: directory, secret: benchSecret),
                transport: .inMemory(InMemoryNetwork()), logger: quietLogger()
            ) { $0.register(ReceiptLedger.self) }
            let ledgers = (0..<1000).map { node.actor(ReceiptLedger.self, key: "l\($0)") }
            let latencies = LatencyBox()
            let rate = try await throughput(callers: 256, duration: window) { caller, n in
                let t0 = clock.now
                _ = try await ledgers[(caller &* 7 &+ n &* 13) % 1000].ask(.deposit(amount: 1))
                latencies.add(Bench_seconds(clock.now - t0) * 1e6)
            }
            rates.append(rate)
            p99s.append(latencies.percentile(0.99))
            p50s.append(latencies.percentile(0.5))
            await node.shutdown()
        }
        report("durable_ask_run_256_callers_1000_actors", median(rates), "calls/s")
        report("durable_ask_run_256_callers_p99", median(p99s), "us")
        report("durable_ask_run_256_callers_p50", median(p50s), "us")
    }
}
