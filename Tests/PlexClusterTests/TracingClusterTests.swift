import InMemoryTracing
import PlexCluster
import PlexCore
import PlexTestKit
import Testing
import Tracing

/// Counts, durably, and logs each message it handles.
struct TracedTally: VirtualActor {
    static let typeName = "traced-tally"
    static let durability = Durability.durable(checkpointEvery: 1000)
    typealias State = Int
    init() {}
    static func initialState(for id: ActorID) -> Int { 0 }
    func handle(_ request: Int, state: inout Int, context: ActorContext) async throws -> Int {
        state += request
        context.logger.info("tally now \(state)")
        return state
    }
}

/// Asks a ``TracedTally`` (with its own key) from its handler: a call that makes a call.
struct TracedRelay: VirtualActor {
    static let typeName = "traced-relay"
    init() {}
    func handle(_ request: String, state: inout NoState, context: ActorContext) async throws -> Int {
        try await context.actor(TracedTally.self, key: request).ask(1)
    }
}

@Suite("Tracing: spans of calls, hops and commits, one trace across nodes", .timeLimit(.minutes(2)))
struct TracingClusterTests {
    /// One in-memory tracer per node: a trace that spans both can only have crossed in the call frame.
    final class Tracers: Sendable {
        let byNode: [String: InMemoryTracer] = ["node-0": InMemoryTracer(), "node-1": InMemoryTracer()]
        func spans(_ node: String) -> [FinishedInMemorySpan] { byNode[node]?.finishedSpans ?? [] }
    }

    func withTracedCluster(_ body: @Sendable @escaping (TestCluster, Tracers) async throws -> Void) async throws {
        let tracers = Tracers()
        try await withTestCluster(
            nodes: 2, transport: .loopbackTCP,
            setup: { configuration in
                configuration.tracer = configuration.nodeID.flatMap { tracers.byNode[$0.rawValue] }
            },
            register: { node in
                node.register(TracedTally.self)
                node.register(TracedRelay.self)
            }
        ) { cluster in try await body(cluster, tracers) }
    }

    @Test("a call to an actor on another node is one trace: the caller's client span is the turn's parent")
    func crossNodeCall() async throws {
        try await withTracedCluster { cluster, tracers in
            let key = key(ofType: TracedTally.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0))
            #expect(try await cluster.node(0).actor(TracedTally.self, key: key).ask(2) == 2)
            let client = try #require(tracers.spans("node-0").first { $0.operationName == "call traced-tally" })
            #expect(client.kind == .client)
            #expect(client.attributes["plex.actor.key"]?.toSpanAttribute() == .string(key))
            // The owner's spans end when its turn and commit do; wait for them with a deadline.
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(10)
            var turn: FinishedInMemorySpan?
            var commit: FinishedInMemorySpan?
            while turn == nil || commit == nil, clock.now < deadline {
                turn = tracers.spans("node-1").first { $0.operationName == "actor traced-tally" }
                commit = tracers.spans("node-1").first { $0.operationName == "journal commit" }
                if turn == nil || commit == nil { try await Task.sleep(for: .milliseconds(10)) }
            }
            let served = try #require(turn, "the owner traced the turn")
            #expect(served.kind == .server)
            #expect(served.traceID == client.traceID, "one trace across the two nodes")
            #expect(served.parentSpanID == client.spanID, "the turn is the hop's child")
            let committed = try #require(commit, "the owner traced the durable turn's commit")
            #expect(committed.traceID == client.traceID)
            #expect(committed.parentSpanID == served.spanID)
            #expect(!tracers.spans("node-0").contains { $0.operationName == "actor traced-tally" }, "it ran once")
        }
    }

    @Test("a call a handler makes continues its caller's trace, across nodes and back")
    func nestedCall() async throws {
        try await withTracedCluster { cluster, tracers in
            let relay = key(ofType: TracedRelay.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0))
            let tally = key(ofType: TracedTally.typeName, ownedBy: cluster.node(0).nodeID, on: cluster.node(0))
            let root = InMemoryTracer()
            let span = root.startSpan("test", context: .topLevel)
            let reply = try await ServiceContext.withValue(span.context) {
                try await cluster.node(0).actor(TracedRelay.self, key: relay).ask(tally)
            }
            span.end()
            #expect(reply == 1)
            let traceID = span.context.inMemorySpanContext?.traceID
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(10)
            func names() -> [String] {
                (tracers.spans("node-0") + tracers.spans("node-1")).filter { $0.traceID == traceID }.map(
                    \.operationName)
            }
            while !names().contains("journal commit"), clock.now < deadline {
                try await Task.sleep(for: .milliseconds(10))
            }
            // node-0 calls the relay on node-1, whose handler calls the tally back on node-0: all one trace.
            #expect(names().filter { $0 == "call traced-relay" }.count == 1, "\(names())")
            #expect(names().filter { $0 == "actor traced-relay" }.count == 1, "\(names())")
            #expect(names().filter { $0 == "call traced-tally" }.count == 1, "\(names())")
            #expect(names().filter { $0 == "actor traced-tally" }.count == 1, "\(names())")
            #expect(names().contains("journal commit"), "\(names())")
        }
    }

    @Test("a node that does not trace sends no trace context")
    func offByDefault() async throws {
        try await withTestCluster(nodes: 2, transport: .loopbackTCP, register: { $0.register(TracedTally.self) }) {
            cluster in
            #expect(cluster.node(0).tracer == nil && cluster.node(1).tracer == nil)
            let key = key(ofType: TracedTally.typeName, ownedBy: cluster.node(1).nodeID, on: cluster.node(0))
            // A caller's context is not sent by a node without a tracer (the frame stays as it was).
            let root = InMemoryTracer()
            let span = root.startSpan("test", context: .topLevel)
            _ = try await ServiceContext.withValue(span.context) {
                try await cluster.node(0).actor(TracedTally.self, key: key).ask(1)
            }
            span.end()
            #expect(root.performedContextInjections.isEmpty)
        }
    }
}
