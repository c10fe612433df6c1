import Foundation
import PlexExamples
import PlexSpaces
import PlexTestKit
import Testing

@Suite("Scenario 4: the counter durable object", .timeLimit(.minutes(2)))
struct CounterObjectTests {
    @Test(
        "increments and decrements from every node; never below zero, with a typed error; survives its owner's crash",
        arguments: TestTransport.allCases)
    func countsAndSurvives(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 3, transport: transport, register: { $0.registerExamples() }) { cluster in
            let refs = (0..<3).map { cluster.node($0).actor(DurableCounter.self, key: "visits") }
            for (i, ref) in refs.enumerated() { _ = try await ref.ask(.increment(by: i + 1)) }
            #expect(try await refs[0].ask(.decrement(by: 2)).value == 4)
            let below = await #expect(throws: CallError.self) { try await refs[1].ask(.decrement(by: 5)) }
            #expect(below?.remoteCode == DurableCounter.belowZero)
            #expect(try await refs[2].ask(.get).value == 4, "a refused decrement changes nothing")
            let owner = try await refs[0].ask(.get).node
            let index = try #require((0..<3).first { cluster.node($0).nodeID.rawValue == owner })
            await cluster.crash(index)
            try await cluster.restart(index)
            try await eventually("the restarted owner answers") {
                (try? await refs[(index + 1) % 3].ask(.get))?.node == owner
            }
            #expect(try await refs[(index + 1) % 3].ask(.get).value == 4)
        }
    }

    @Test("activated on demand, deactivated when idle, and its count comes back")
    func idle() async throws {
        try await withTestCluster(
            nodes: 1, transport: .inMemory, setup: { $0.activation.idleTimeout = .milliseconds(100) },
            register: { $0.registerExamples() }
        ) { cluster in
            let node = cluster.node(0)
            let ref = node.actor(DurableCounter.self, key: "idle")
            #expect(!node.isActive(ref.id))
            _ = try await ref.ask(.increment(by: 3))
            #expect(node.isActive(ref.id))
            try await eventually("deactivated when idle") { !node.isActive(ref.id) }
            #expect(try await ref.ask(.increment(by: 1)).value == 4)
        }
    }

    @Test("the alarm resets the count at its time, also after the owner restarted; cancelling it keeps the count")
    func alarm() async throws {
        try await withTestCluster(nodes: 1, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let ref = cluster.node(0).actor(DurableCounter.self, key: "alarm")
            _ = try await ref.ask(.increment(by: 7))
            let armed = try await ref.ask(.resetAfter(seconds: 1))
            let resetAt = try #require(armed.resetAt)
            #expect(try await cluster.node(0).journal.reminders(for: ref.id).count == 1)
            await cluster.crash(0)
            try await cluster.restart(0)
            let restarted = cluster.node(0).actor(DurableCounter.self, key: "alarm")
            try await eventually("the alarm fired", within: .seconds(15)) { try await restarted.ask(.get).value == 0 }
            #expect(Int64(Date().timeIntervalSince1970 * 1000) >= resetAt, "not before its time")
            #expect(try await restarted.ask(.get).resetAt == nil)

            _ = try await restarted.ask(.increment(by: 2))
            _ = try await restarted.ask(.resetAfter(seconds: 1))
            #expect(try await restarted.ask(.cancelReset).resetAt == nil)
            #expect(try await cluster.node(0).journal.reminders(for: restarted.id).isEmpty, "the alarm is gone")
            #expect(try await restarted.ask(.get).value == 2)
        }
    }

    @Test("bad requests get typed errors and change nothing: overflow, negative amounts, an alarm too far ahead")
    func badRequests() async throws {
        try await withTestCluster(nodes: 1, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let ref = cluster.node(0).actor(DurableCounter.self, key: "bad")
            _ = try await ref.ask(.increment(by: 1))
            for (request, code) in [
                (DurableCounter.Request.increment(by: .max), "overflow"), (.increment(by: -1), "invalid-amount"),
                (.decrement(by: -1), "invalid-amount"), (.resetAfter(seconds: -1), "invalid-amount"),
                (.resetAfter(seconds: .max), "invalid-amount"), (.reset, "invalid-request"),
            ] {
                let error = await #expect(throws: CallError.self) { try await ref.ask(request) }
                #expect(error?.remoteCode == code, "\(request)")
            }
            #expect(try await ref.ask(.get) == .init(value: 1, node: cluster.node(0).nodeID.rawValue))
            let ledger = cluster.node(0).actor(Ledger.self, key: "bad")
            _ = try await ledger.ask(.deposit(amount: 1))
            let overflow = await #expect(throws: CallError.self) { try await ledger.ask(.deposit(amount: .max)) }
            #expect(overflow?.remoteCode == "overflow")
            let counter = cluster.node(0).actor(Counter.self, key: "bad")
            _ = try await counter.ask(.increment)
            let added = await #expect(throws: CallError.self) { try await counter.ask(.add(amount: .max)) }
            #expect(added?.remoteCode == "overflow")
        }
    }

    @Test("requests read naturally as JSON: labelled associated values")
    func json() throws {
        let codec = JSONMessageCodec()
        let request = try codec.decode(DurableCounter.Request.self, from: Array(#"{"increment":{"by":5}}"#.utf8))
        guard case .increment(by: 5) = request else { Issue.record("decoded \(request)"); return }
        #expect(
            String(decoding: try codec.encode(Ledger.Request.deposit(amount: 10)), as: UTF8.self)
                == #"{"deposit":{"amount":10}}"#)
    }
}
