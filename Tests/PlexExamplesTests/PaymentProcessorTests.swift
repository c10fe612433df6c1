import PlexExamples
import PlexSpaces
import PlexTestKit
import Synchronization
import Testing

/// A clock the test moves by hand (milliseconds since 1970).
final class HandClock: Sendable {
    private let now = Mutex<Int64>(1_800_000_000_000)
    func read() -> Int64 { now.withLock { $0 } }
    func advance(by duration: Duration) { now.withLock { $0 += Int64(duration.components.seconds) * 1000 } }
}

@Suite("Scenario 3: the idempotent payment processor", .timeLimit(.minutes(2)))
struct PaymentProcessorTests {
    @Test(
        "a repeated order returns the first payment; its records survive the owner's crash",
        arguments: TestTransport.allCases)
    func repeatsAndSurvives(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 3, transport: transport, register: { $0.registerExamples() }) { cluster in
            let refs = (0..<3).map { cluster.node($0).actor(PaymentProcessor.self, key: "shop-1") }
            let made = try await refs[0].ask(.process(order: "o-1", amount: 25))
            let paid = try #require(made.payment)
            #expect(!made.repeated)
            #expect(paid.transaction.hasPrefix("tx-"))
            #expect(try await refs[1].ask(.process(order: "o-1", amount: 25)) == .init(payment: paid, repeated: true))
            let mismatch = await #expect(throws: CallError.self) {
                try await refs[2].ask(.process(order: "o-1", amount: 30))
            }
            #expect(mismatch?.remoteCode == "order-mismatch")
            let other = try #require(try await refs[2].ask(.process(order: "o-2", amount: 25)).payment)
            #expect(other.transaction != paid.transaction)
            let unnamed = await #expect(throws: CallError.self) {
                try await refs[0].ask(.process(order: "", amount: 5))
            }
            #expect(unnamed?.remoteCode == "invalid-order")
            #expect(try await refs[0].ask(.lookup(order: "never")) == .init(payment: nil, repeated: false))

            let owner = cluster.node(0).owner(of: refs[0].id)
            let index = try #require((0..<3).first { cluster.node($0).nodeID == owner })
            let survivor = refs[(index + 1) % 3]
            await cluster.crash(index)
            try await cluster.restart(index)
            try await eventually("the restarted owner answers", within: .seconds(20)) {
                (try? await survivor.ask(.lookup(order: "o-1")))?.payment == paid
            }
            #expect(try await survivor.ask(.process(order: "o-2", amount: 25)) == .init(payment: other, repeated: true))
        }
    }

    @Test("a processed order's record expires after the retention, by the injected clock")
    func retention() async throws {
        let clock = HandClock()
        try await withTestCluster(
            nodes: 1, transport: .inMemory,
            register: {
                $0.register(PaymentProcessor.self) { PaymentProcessor(retention: .seconds(60), clock: clock.read) }
            }
        ) { cluster in
            let ref = cluster.node(0).actor(PaymentProcessor.self, key: "shop-2")
            let first = try #require(try await ref.ask(.process(order: "o-1", amount: 10)).payment)
            #expect(first.processedAt == clock.read())
            clock.advance(by: .seconds(59))
            #expect(try await ref.ask(.process(order: "o-1", amount: 10)) == .init(payment: first, repeated: true))
            clock.advance(by: .seconds(2))
            #expect(try await ref.ask(.lookup(order: "o-1")).payment == nil, "forgotten after 60 s")
            let renewed = try await ref.ask(.process(order: "o-1", amount: 10))
            #expect(!renewed.repeated, "an expired order is paid again")
            let again = try #require(renewed.payment)
            #expect(again.transaction != first.transaction)
            #expect(again.processedAt == clock.read())
        }
    }
}
