import Foundation
import PlexJournal
import PlexSpaces
import PlexTestKit
import Synchronization
import Testing

/// A payment gateway the tests control: counts charges, declines amounts over 100 with an ``ActorFailure``,
/// and fails with an error of its own type on 13.
final class FakeGateway: Sendable {
    struct Down: Error, CustomStringConvertible {
        var description: String { "gateway down" }
    }
    private let charges = Mutex(0)
    var count: Int { charges.withLock { $0 } }

    func charge(_ amount: Int) throws -> String {
        charges.withLock { $0 += 1 }
        if amount == 13 { throw Down() }
        if amount > 100 { throw ActorFailure(code: "declined", message: "card declined for \(amount)") }
        return "receipt-\(amount)"
    }
}

/// A shop whose handler charges through a side effect and takes another branch when the charge throws.
struct Shop: VirtualActor {
    static let typeName = "shop"
    static let durability = Durability.durable(checkpointEvery: 1000)
    struct State: ActorState, Hashable {
        var paid = 0
        var log: [String] = []
    }
    enum Request: Codable, Sendable {
        /// Charges, and records a declined or failed charge instead of failing.
        case pay(Int)
        /// Charges, and fails the call when the charge throws.
        case payOrFail(Int)
        case state
    }
    let gateway: FakeGateway
    init() { gateway = FakeGateway() }
    init(gateway: FakeGateway) { self.gateway = gateway }

    func handle(_ request: Request, state: inout State, context: ActorContext) async throws -> State {
        let gateway = self.gateway
        switch request {
        case .pay(let amount):
            do {
                let receipt = try await context.run("charge") { try gateway.charge(amount) }
                state.paid += amount
                state.log.append(receipt)
            } catch let failure as ActorFailure {
                state.log.append("declined (\(failure.code)): \(failure.message)")
            } catch let failure as RecordedEffectFailure {
                state.log.append("error \(failure.typeName): \(failure.message)")
            }
        case .payOrFail(let amount):
            state.log.append("trying \(amount)")
            let receipt = try await context.run("charge") { try gateway.charge(amount) }
            state.paid += amount
            state.log.append(receipt)
        case .state:
            break
        }
        return state
    }
}

@Suite("Durable actors: effects that throw", .timeLimit(.minutes(1)))
struct EffectFailureClusterTests {
    @Test(
        "an effect that throws is journaled; after a crash, replay throws the same error and the handler branches so",
        arguments: TestTransport.allCases)
    func thrownEffectReplays(transport: TestTransport) async throws {
        let gateway = FakeGateway()
        try await withTestCluster(
            nodes: 2, transport: transport, register: { $0.register(Shop.self) { Shop(gateway: gateway) } }
        ) { cluster in
            let caller = cluster.node(0)
            let owner = cluster.node(1)
            let shop = caller.actor(Shop.self, key: key(Shop.self, ownedBy: owner.nodeID, on: caller))
            _ = try await shop.ask(.pay(50))
            _ = try await shop.ask(.pay(500))  // declined: ActorFailure, caught
            _ = try await shop.ask(.pay(13))  // the gateway's own error, caught as RecordedEffectFailure
            let failed = await #expect(throws: CallError.self) { try await shop.ask(.payOrFail(700)) }
            #expect(failed?.code == .remoteFailure)
            #expect(failed?.remoteCode == "declined")
            _ = try await shop.ask(.pay(20))
            let before = try await shop.ask(.state)
            #expect(before.paid == 70)
            #expect(
                before.log == [
                    "receipt-50", "declined (declined): card declined for 500", "error Down: gateway down",
                    "trying 700", "receipt-20",
                ])
            #expect(gateway.count == 5)

            // The failure is in the journal with its message.
            let entries = try await owner.journal.entries(for: shop.id)
            let declined = try EffectLog.decode(try #require(entries[1].effects))
            #expect(declined.map(\.name) == ["charge"])
            #expect(declined[0].value.isEmpty)
            let failure = try #require(declined[0].failure)
            #expect(failure.typeName == "ActorFailure")
            #expect(failure.code == "declined")
            #expect(failure.message == "card declined for 500")
            let downEffects = try EffectLog.decode(try #require(entries[2].effects))
            let down = try #require(downEffects[0].failure)
            #expect(down.typeName == "Down")
            #expect(down.code == nil)
            #expect(entries[3].reply == nil)  // the call that failed is journaled as failed
            // A call without an idempotency key keeps only the mark that it was answered, not its reply.
            #expect(entries[0].reply == [])

            await cluster.crash(1)
            let restarted = try await cluster.restart(1)
            try await cluster.waitUntil(caller, isConnectedTo: restarted)
            let after = try await shop.ask(.state)  // recovers by replaying all five messages
            #expect(after == before)
            #expect(gateway.count == 5)  // no charge ran again
            #expect(try await shop.ask(.pay(30)).paid == 100)
            #expect(gateway.count == 6)
        }
    }
}

/// How many effects each message asks for, and their names: the tests change it between runs.
final class EffectScript: Sendable {
    private let storage = Mutex(["a", "b"])
    var names: [String] {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}

/// Runs the scripted effects and swallows whatever they throw, so only the replay's own check can notice a
/// departure from the journal.
struct Scripted: VirtualActor {
    static let typeName = "scripted"
    static let durability = Durability.durable(checkpointEvery: 1000)
    typealias State = Int
    let script: EffectScript
    init() { script = EffectScript() }
    init(script: EffectScript) { self.script = script }
    static func initialState(for id: ActorID) -> Int { 0 }

    func handle(_ request: Bool, state: inout Int, context: ActorContext) async throws -> Int {
        if request {
            for name in script.names { _ = try? await context.run(name) { 1 } }
        }
        state += 1
        return state
    }
}

@Suite("Durable actors: non-deterministic replay", .timeLimit(.minutes(1)))
struct NonDeterministicReplayTests {
    @Test(
        "replay asking for fewer, more or other effects than were recorded stops recovery and names the position",
        arguments: [
            (["a"], "asked for 1 effect, but the journal recorded 2; the first one not asked for is 'b' at position 2"),
            (["a", "b", "c"], "asked for effect 'c' at position 3, but the journal recorded only 2"),
            (["a", "x"], "asked for effect 'x' at position 2, the journal recorded 'b'"),
            ([], "asked for 0 effects, but the journal recorded 2; the first one not asked for is 'a' at position 1"),
        ])
    func departure(names: [String], expected: String) async throws {
        let script = EffectScript()
        try await withTestCluster(
            nodes: 1, transport: .inMemory, register: { $0.register(Scripted.self) { Scripted(script: script) } }
        ) { cluster in
            let ref = cluster.node(0).actor(Scripted.self, key: "s")
            #expect(try await ref.ask(false) == 1)
            #expect(try await ref.ask(true) == 2)  // entry 2 records effects a and b
            await cluster.crash(0)
            script.names = names  // the code changed between runs
            try await cluster.restart(0)
            let restarted = cluster.node(0).actor(Scripted.self, key: "s")
            for _ in 0..<2 {  // it stays stopped: nothing is skipped
                let error = await #expect(throws: CallError.self) { try await restarted.ask(false) }
                #expect(error?.code == .storageFailure)
                #expect(
                    error?.message.contains("non-determinism: replay \(expected)") == true,
                    "\(String(describing: error))")
                #expect(error?.message.contains("entry 2") == true)
            }
            script.names = ["a", "b"]  // the code is fixed: recovery succeeds
            #expect(try await restarted.ask(false) == 3)
        }
    }
}
