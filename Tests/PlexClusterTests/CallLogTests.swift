import CoreMetrics
import PlexCore
import PlexExamples
import PlexTestKit
import Testing

@testable import PlexCluster

@Suite("The dashboard's call log")
struct CallLogTests {
    let second: UInt64 = 1_000_000_000

    @Test("it keeps the ten slowest turns of the last minute, slowest first, and not the runtime's own")
    func slowest() {
        let log = CallLog()
        for n in 1...30 {
            log.record(ActorID(typeName: "t", key: "\(n)"), nanoseconds: UInt64(n) * 1000, now: second, error: nil)
        }
        log.record(ActorID(typeName: "plex.workflow", key: "w"), nanoseconds: 1_000_000, now: second, error: nil)
        #expect(log.slowest(now: second).map(\.actor.key) == (21...30).reversed().map { "\($0)" })
        // A minute later they are gone, and a fast turn gets in again.
        log.record(ActorID(typeName: "t", key: "late"), nanoseconds: 1, now: 62 * second, error: nil)
        #expect(log.slowest(now: 62 * second).map(\.actor.key) == ["late"])
    }

    @Test("a failed turn is listed among the failures, newest first, and among the slowest only if it was slow")
    func failures() {
        let log = CallLog()
        for n in 1...10 {
            log.record(ActorID(typeName: "t", key: "\(n)"), nanoseconds: 1_000_000, now: second, error: nil)
        }
        for n in 1...12 {
            log.record(
                ActorID(typeName: "plex.workflow", key: "f\(n)"), nanoseconds: 1, now: second,
                error: CallError(.remoteFailure, "boom \(n)"))
        }
        #expect(log.failed.map(\.actor.key) == (3...12).reversed().map { "f\($0)" })
        #expect(log.failed.first?.error?.contains("boom 12") == true)
        #expect(!log.slowest(now: second).contains { $0.actor.key.hasPrefix("f") })
    }

    @Test("a node times no turns for the log until its reader (the gateway) keeps it, then lists a failed call")
    func offUntilKept() async throws {
        // No metrics backend (other suites in this process may bootstrap one): the log alone decides whether a
        // turn is timed.
        try await withMetricsFactory(NOOPMetricsHandler.instance) {
            try await offUntilKeptWithoutMetrics()
        }
    }

    private func offUntilKeptWithoutMetrics() async throws {
        try await withTestCluster(nodes: 1, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let node = cluster.node(0)
            let counter = node.actor(Counter.self, key: "c")
            await #expect(throws: CallError.self) { try await counter.ask(.add(amount: -1)) }
            #expect(node.recentCalls.failed.isEmpty)
            node.keepRecentCalls()
            await #expect(throws: CallError.self) { try await counter.ask(.add(amount: -2)) }
            #expect(node.recentCalls.failed.map(\.actor) == [counter.id])
            #expect(node.recentCalls.failed.first?.error?.contains("cannot add -2") == true)
        }
    }
}
