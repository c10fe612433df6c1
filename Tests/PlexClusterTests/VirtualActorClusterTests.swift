import PlexExamples
import PlexSpaces
import PlexTestKit
import Synchronization
import Testing

/// Keys of `Counter` owned by `owner` in `node`'s view.
func keys(ownedBy owner: NodeID, on node: PlexNode, count: Int, prefix: String = "k") -> [String] {
    var result: [String] = []
    var i = 0
    while result.count < count {
        let key = "\(prefix)\(i)"
        if node.owner(of: ActorID(typeName: Counter.typeName, key: key)) == owner { result.append(key) }
        i += 1
    }
    return result
}

@Suite("Virtual actors across a cluster", .timeLimit(.minutes(2)))
struct VirtualActorClusterTests {
    @Test(
        "every node reaches every actor on its owner, which hosts its only activation",
        arguments: TestTransport.allCases)
    func callsReachOwners(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 3, transport: transport, register: { $0.registerExamples() }) { cluster in
            for (index, node) in cluster.nodes.enumerated() {
                for k in 0..<12 {
                    let ref = node.actor(Counter.self, key: "c\(k)")
                    let reply = try await ref.ask(.increment)
                    #expect(reply.count == index + 1)
                    #expect(reply.node == node.owner(of: ref.id)?.rawValue)
                }
            }
            for k in 0..<12 {
                let id = ActorID(typeName: Counter.typeName, key: "c\(k)")
                let hosts = cluster.nodes.filter { $0.isActive(id) }.map(\.nodeID)
                #expect(hosts == [cluster.node(0).owner(of: id)!])
            }
            // Owners are spread: with 36 actors on 3 nodes, every node owns some.
            let owners = Set((0..<36).map { cluster.node(0).owner(of: ActorID(typeName: "counter", key: "c\($0)"))! })
            #expect(owners.count == 3)
        }
    }

    @Test(
        "a handler that throws replies with remoteFailure and the activation keeps its state",
        arguments: TestTransport.allCases)
    func handlerErrors(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 2, transport: transport, register: { $0.registerExamples() }) { cluster in
            let caller = cluster.node(0)
            let key = keys(ownedBy: cluster.node(1).nodeID, on: caller, count: 1)[0]
            let ref = caller.actor(Counter.self, key: key)
            _ = try await ref.ask(.add(amount: 5))
            let error = await #expect(throws: CallError.self) { try await ref.ask(.add(amount: -1)) }
            #expect(error?.code == .remoteFailure)
            #expect(error?.remoteCode == "negative")
            #expect(try await ref.ask(.increment).count == 6)
        }
    }

    @Test("a type the owner does not know fails with unknownActorType", arguments: TestTransport.allCases)
    func unknownType(transport: TestTransport) async throws {
        try await withTestCluster(
            nodes: 2, transport: transport,
            register: { node in
                node.register(Echo.self)
                if node.nodeID.rawValue == "node-0" { node.register(Counter.self) }
            }
        ) { cluster in
            let caller = cluster.node(0)
            let key = keys(ownedBy: cluster.node(1).nodeID, on: caller, count: 1)[0]
            let error = await #expect(throws: CallError.self) {
                try await caller.actor(Counter.self, key: key).ask(.get)
            }
            #expect(error?.code == .unknownActorType)
        }
    }

    @Test("an actor handles one message at a time, even when its handler awaits", arguments: TestTransport.allCases)
    func oneAtATime(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 2, transport: transport, register: { $0.register(Turnstile.self) }) {
            cluster in
            let ref = cluster.node(0).actor(Turnstile.self, key: "t")
            try await withThrowingTaskGroup(of: Turnstile.Reply.self) { group in
                // The test is about turns, not speed: a loaded machine may take seconds for 50 turns.
                for _ in 0..<50 { group.addTask { try await ref.ask(.enter, timeout: .seconds(60)) } }
                var seen = 0
                for try await reply in group {
                    #expect(reply.concurrent == 1)
                    seen += 1
                }
                #expect(seen == 50)
            }
            #expect(try await ref.ask(.count).entered == 50)
        }
    }

    @Test("after a ring change a node deactivates the activations it no longer owns", arguments: TestTransport.allCases)
    func releasesMovedActivations(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 1, transport: transport, register: { $0.registerExamples() }) { cluster in
            let first = cluster.node(0)
            let ids = (0..<40).map { ActorID(typeName: Counter.typeName, key: "moving-\($0)") }
            for id in ids { _ = try await first.actor(Counter.self, key: id.key).ask(.increment) }
            #expect(ids.allSatisfy { first.isActive($0) })
            let joined = try await cluster.addNode()
            try await cluster.waitForConvergence()
            let moved = ids.filter { first.owner(of: $0) == joined.nodeID }
            try #require(!moved.isEmpty && moved.count < ids.count)
            try await eventually("the moved activations are released, the others kept") {
                moved.allSatisfy { !first.isActive($0) }
                    && ids.filter { !moved.contains($0) }.allSatisfy { first.isActive($0) }
            }
        }
    }

    @Test("a lost connection fails the calls in flight on it with nodeUnavailable, before their deadline")
    func lostConnectionFailsCallsInFlight() async throws {
        try await withTestCluster(nodes: 2, transport: .loopbackTCP, register: { $0.register(Sleeper.self) }) {
            cluster in
            let caller = cluster.node(0)
            let ref = caller.actor(
                Sleeper.self, key: ownedKey(of: Sleeper.self, ownedBy: cluster.node(1).nodeID, on: caller))
            let clock = ContinuousClock()
            let started = clock.now
            let call = Task { try await ref.ask(20_000, timeout: .seconds(60)) }
            try await eventually("the call is in flight") { cluster.node(1).isActive(ref.id) }
            await cluster.crash(1)
            let error = await #expect(throws: CallError.self) { try await call.value }
            #expect(error?.code == .nodeUnavailable, "\(String(describing: error))")
            #expect(clock.now - started < .seconds(20), "failed when the connection went, not at a deadline")
        }
    }

    @Test(
        "the owner's crash makes calls fail fast with nodeUnavailable, never activating elsewhere; its restart brings them back",
        arguments: TestTransport.allCases)
    func ownerCrashAndRestart(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 3, transport: transport, register: { $0.registerExamples() }) { cluster in
            let caller = cluster.node(0)
            let victim = cluster.node(2).nodeID
            let key = keys(ownedBy: victim, on: caller, count: 1)[0]
            let ref = caller.actor(Counter.self, key: key)
            #expect(try await ref.ask(.increment).node == victim.rawValue)
            await cluster.crash(2)
            try await eventually("calls fail with nodeUnavailable") {
                do {
                    _ = try await ref.ask(.increment, timeout: .seconds(5))
                    return false
                } catch let error as CallError { return error.code == .nodeUnavailable }
            }
            // Fast: the failure does not wait for the 5 s deadline.
            let clock = ContinuousClock()
            let started = clock.now
            await #expect(throws: CallError.self) { try await ref.ask(.get, timeout: .seconds(5)) }
            #expect(clock.now - started < .seconds(1))
            for node in cluster.nodes { #expect(!node.isActive(ref.id)) }
            try await cluster.restart(2)
            try await eventually("calls succeed again on the restarted owner") {
                (try? await ref.ask(.get))?.node == victim.rawValue
            }
            // Its new incarnation is admitted from its gossip (a handshake alone admits none).
            try await eventually("the caller sees the owner's new incarnation") {
                caller.members.first { $0.nodeID == victim }?.incarnation == 2
            }
        }
    }

    @Test("named actors spawned on a node resolve from every node")
    func namedActors() async throws {
        try await withTestCluster(nodes: 3, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            try cluster.node(1).spawn(Echo.self, key: "leader-1", name: "leader")
            try await eventually("node 2 resolves the name") {
                cluster.node(2).resolve(Echo.self, name: "leader") != nil
            }
            let ref = try #require(cluster.node(2).resolve(Echo.self, name: "leader"))
            let reply = try await ref.ask(Echo.Request(text: "hi"))
            #expect(reply.node == "node-1")
            #expect(reply.text == "hi")
        }
    }

    @Test(
        "a graceful leave takes the node out of the ring and its actors are placed elsewhere",
        arguments: TestTransport.allCases)
    func gracefulLeave(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 3, transport: transport, register: { $0.registerExamples() }) { cluster in
            let caller = cluster.node(0)
            let leaving = cluster.node(2).nodeID
            let key = keys(ownedBy: leaving, on: caller, count: 1)[0]
            let ref = caller.actor(Counter.self, key: key)
            #expect(try await ref.ask(.increment).node == leaving.rawValue)
            await cluster.leave(2)
            try await eventually("the ring no longer holds the leaver") { caller.owner(of: ref.id) != leaving }
            let reply = try await ref.ask(.increment)
            #expect(reply.node != leaving.rawValue)
        }
    }

    @Test("a partition makes the far owner unavailable; healing restores it")
    func partition() async throws {
        try await withTestCluster(nodes: 3, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let caller = cluster.node(0)
            let far = cluster.node(2)
            let ref = caller.actor(Counter.self, key: keys(ownedBy: far.nodeID, on: caller, count: 1)[0])
            _ = try await ref.ask(.increment)
            cluster.network.partition(caller.address, far.address)
            try await eventually("caller sees the far node unreachable") {
                caller.members.first { $0.nodeID == far.nodeID }?.reachable == false
            }
            let error = await #expect(throws: CallError.self) { try await ref.ask(.increment, timeout: .seconds(2)) }
            #expect(error?.code == .nodeUnavailable)
            cluster.network.heal(caller.address, far.address)
            try await eventually("calls succeed after healing") { (try? await ref.ask(.get))?.count == 1 }
        }
    }

    @Test("idle activations are deactivated and the hook runs")
    func idleDeactivation() async throws {
        let hooks = HookLog()
        try await withTestCluster(
            nodes: 1, transport: .inMemory,
            setup: { $0.activation.idleTimeout = .milliseconds(100) },
            register: { $0.register(Hooked.self) { Hooked(log: hooks) } }
        ) { cluster in
            let node = cluster.node(0)
            _ = try await node.actor(Hooked.self, key: "h").ask(1)
            #expect(node.activationCount == 1)
            try await eventually("deactivated when idle") { node.activationCount == 0 }
            #expect(hooks.events == ["activate h", "handle h 1", "deactivate h"])
        }
    }

    @Test("an idle sweep ends activations side by side, not one after another")
    func idleSweepOverlaps() async throws {
        // Each deactivation hook waits (up to 5 s) for another to be under way: one after another, no two
        // overlap. (A durable actor's deactivation waits for a checkpoint's commit; one at a time, a sweep of
        // thousands of finished workflow instances fell behind the rate they finished at.)
        let overlap = Overlap()
        try await withTestCluster(
            nodes: 1, transport: .inMemory,
            setup: { $0.activation.idleTimeout = .milliseconds(100) },
            register: { $0.register(SlowToLeave.self) { SlowToLeave(overlap: overlap) } }
        ) { cluster in
            let node = cluster.node(0)
            for k in 0..<4 { _ = try await node.actor(SlowToLeave.self, key: "s\(k)").ask(k) }
            try await eventually("all deactivated", within: .seconds(30)) { node.activationCount == 0 }
            #expect(overlap.most >= 2, "deactivations overlapped")
        }
    }

    @Test("beyond the activation limit the least recently used are deactivated")
    func activationLimit() async throws {
        try await withTestCluster(
            nodes: 1, transport: .inMemory,
            setup: { $0.activation.maximumActivations = 20 },
            register: { $0.registerExamples() }
        ) { cluster in
            let node = cluster.node(0)
            for k in 0..<50 { _ = try await node.actor(Counter.self, key: "n\(k)").ask(.increment) }
            try await eventually("at most the limit stay active") { node.activationCount <= 20 }
            #expect(node.isActive(ActorID(typeName: "counter", key: "n49")))
            #expect(!node.isActive(ActorID(typeName: "counter", key: "n0")))
        }
    }
}

/// Records hook calls, to check the lifecycle.
final class HookLog: Sendable {
    private let storage = Mutex<[String]>([])
    func append(_ event: String) { storage.withLock { $0.append(event) } }
    var events: [String] { storage.withLock { $0 } }
}

struct Hooked: VirtualActor {
    static let typeName = "hooked"
    let log: HookLog
    init() { self.log = HookLog() }
    init(log: HookLog) { self.log = log }

    func activate(state: inout NoState, context: ActorContext) async throws { log.append("activate \(context.id.key)") }
    func deactivate(state: inout NoState, context: ActorContext) async { log.append("deactivate \(context.id.key)") }
    func handle(_ request: Int, state: inout NoState, context: ActorContext) async throws -> Int {
        log.append("handle \(context.id.key) \(request)")
        return request
    }
}

/// How many deactivation hooks run at once, and the most that did.
final class Overlap: Sendable {
    private let counts = Mutex((inside: 0, most: 0))
    func enter() {
        counts.withLock {
            $0.inside += 1; $0.most = max($0.most, $0.inside)
        }
    }
    func leave() { counts.withLock { $0.inside -= 1 } }
    var most: Int { counts.withLock { $0.most } }
}

/// Its deactivation hook waits up to 5 s for another deactivation to be under way at the same time.
struct SlowToLeave: VirtualActor {
    static let typeName = "slow-to-leave"
    let overlap: Overlap
    init() { self.overlap = Overlap() }
    init(overlap: Overlap) { self.overlap = overlap }

    func deactivate(state: inout NoState, context: ActorContext) async {
        overlap.enter()
        defer { overlap.leave() }
        let deadline = ContinuousClock.now + .seconds(5)
        while overlap.most < 2, ContinuousClock.now < deadline { try? await Task.sleep(for: .milliseconds(5)) }
    }

    func handle(_ request: Int, state: inout NoState, context: ActorContext) async throws -> Int { request }
}

/// Counts how many handlers run at once; awaits inside the handler to invite interleaving.
struct Turnstile: VirtualActor {
    static let typeName = "turnstile"
    struct State: ActorState {
        var inside = 0
        var entered = 0
    }
    enum Request: Codable, Sendable { case enter, count }
    struct Reply: Codable, Sendable {
        var concurrent: Int
        var entered: Int
    }

    func handle(_ request: Request, state: inout State, context: ActorContext) async throws -> Reply {
        guard case .enter = request else { return Reply(concurrent: state.inside, entered: state.entered) }
        state.inside += 1
        let seen = state.inside
        try await Task.sleep(for: .milliseconds(1))
        await Task.yield()
        state.inside -= 1
        state.entered += 1
        return Reply(concurrent: seen, entered: state.entered)
    }
}

/// Sleeps for the requested milliseconds: keeps a call in flight.
struct Sleeper: VirtualActor {
    static let typeName = "sleeper"
    func handle(_ request: Int, state: inout NoState, context: ActorContext) async throws -> Int {
        try await Task.sleep(for: .milliseconds(request))
        return request
    }
}

@Suite("Backpressure", .timeLimit(.minutes(1)))
struct BackpressureClusterTests {
    @Test("a full in-flight window makes callers wait, then fail with overloaded", arguments: TestTransport.allCases)
    func overloaded(transport: TestTransport) async throws {
        try await withTestCluster(
            nodes: 2, transport: transport, setup: { $0.calls.maximumInFlightPerPeer = 1 },
            register: { $0.register(Sleeper.self) }
        ) { cluster in
            let caller = cluster.node(0)
            let remote = cluster.node(1).nodeID
            var keys: [String] = []
            var i = 0
            while keys.count < 3 {
                if caller.owner(of: ActorID(typeName: Sleeper.typeName, key: "s\(i)")) == remote {
                    keys.append("s\(i)")
                }
                i += 1
            }
            let slowKey = keys[0]
            let slow = Task { try await caller.actor(Sleeper.self, key: slowKey).ask(1500, timeout: .seconds(5)) }
            try await eventually("the slow call occupies the window") {
                cluster.node(1).isActive(ActorID(typeName: Sleeper.typeName, key: keys[0]))
            }
            let error = await #expect(throws: CallError.self) {
                _ = try await caller.actor(Sleeper.self, key: keys[1]).ask(1, timeout: .milliseconds(200))
            }
            #expect(error?.code == .overloaded)
            #expect(try await slow.value == 1500)
            // The window is free again.
            #expect(try await caller.actor(Sleeper.self, key: keys[2]).ask(1, timeout: .seconds(5)) == 1)
        }
    }

    @Test("a call that outlives its deadline fails with timeout", arguments: TestTransport.allCases)
    func timeout(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 2, transport: transport, register: { $0.register(Sleeper.self) }) { cluster in
            let caller = cluster.node(0)
            var i = 0
            while caller.owner(of: ActorID(typeName: Sleeper.typeName, key: "t\(i)")) != cluster.node(1).nodeID {
                i += 1
            }
            let error = await #expect(throws: CallError.self) {
                _ = try await caller.actor(Sleeper.self, key: "t\(i)").ask(2000, timeout: .milliseconds(100))
            }
            #expect(error?.code == .timeout)
        }
    }
}

@Suite("Failover placement and injected faults", .timeLimit(.minutes(1)))
struct FaultClusterTests {
    @Test(
        "a failover type re-homes at once when its owner crashes, and returns when it restarts",
        arguments: TestTransport.allCases)
    func failover(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 3, transport: transport, register: { $0.registerExamples() }) { cluster in
            let caller = cluster.node(0)
            let victim = cluster.node(2).nodeID
            var i = 0
            while caller.owner(of: ActorID(typeName: Echo.typeName, key: "e\(i)"), placement: .failover) != victim {
                i += 1
            }
            let ref = caller.actor(Echo.self, key: "e\(i)")
            #expect(try await ref.ask(Echo.Request(text: "a")).node == victim.rawValue)
            await cluster.crash(2)
            try await eventually("the echo runs elsewhere") {
                guard let reply = try? await ref.ask(Echo.Request(text: "b")) else { return false }
                return reply.node != victim.rawValue
            }
            try await cluster.restart(2)
            try await eventually("the echo returns to its owner") {
                (try? await ref.ask(Echo.Request(text: "c")))?.node == victim.rawValue
            }
        }
    }

    @Test("injected delay slows calls without breaking them; a deadline shorter than the delay times out")
    func delay() async throws {
        try await withTestCluster(nodes: 2, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let caller = cluster.node(0)
            let ref = caller.actor(Counter.self, key: keys(ownedBy: cluster.node(1).nodeID, on: caller, count: 1)[0])
            cluster.network.setDelay(.milliseconds(30))
            let clock = ContinuousClock()
            let start = clock.now
            let first = try await ref.ask(.increment)
            let elapsed = clock.now - start
            #expect(first.count == 1)
            #expect(elapsed >= .milliseconds(60))  // one delay each way
            let error = await #expect(throws: CallError.self) { try await ref.ask(.get, timeout: .milliseconds(20)) }
            #expect(error?.code == .timeout)
            cluster.network.healAll()
        }
    }

    @Test(
        "dropped frames time calls out with a typed error; retried with their keys, acknowledged calls count exactly once; membership survives a lossy network"
    )
    func drops() async throws {
        try await withTestCluster(nodes: 3, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let caller = cluster.node(0)
            let ref = caller.actor(Counter.self, key: keys(ownedBy: cluster.node(1).nodeID, on: caller, count: 1)[0])
            cluster.network.setDropRate(1.0)
            let error = await #expect(throws: CallError.self) {
                try await ref.ask(.increment, timeout: .milliseconds(100))
            }
            #expect(error?.code == .timeout)
            cluster.network.setDropRate(0.2)
            // With 20% loss, heartbeats (every 50 ms, judged after 1.5 s) keep everyone reachable. A caller that
            // retries each increment with its idempotency key until it is acknowledged sees only timeouts
            // (any other error fails the test), and each increment runs exactly once: a retry whose first
            // attempt ran (its reply was dropped) gets the stored reply.
            var acknowledged: [Int] = []
            var timeouts = 0
            var unreachable: [String] = []
            for n in 0..<30 {
                for attempt in 1... {
                    do {
                        let reply = try await ref.ask(
                            .increment, timeout: .milliseconds(200), idempotencyKey: "increment-\(n)")
                        acknowledged.append(reply.count)
                        break
                    } catch let error as CallError where error.code == .timeout {
                        timeouts += 1
                        try #require(attempt < 50, "increment \(n) not acknowledged in 50 attempts")
                    }
                }
                for node in cluster.nodes {
                    for member in node.members where !member.reachable {
                        unreachable.append("\(node.nodeID) saw \(member.nodeID) unreachable")
                    }
                }
            }
            // The increment sent into total loss never arrived; each keyed one counted once, in order.
            #expect(acknowledged == Array(1...30))
            #expect(timeouts > 0)  // frames were lost (all 60+ frames delivered at 20% loss: p < 2e-6)
            #expect(unreachable.isEmpty)
            cluster.network.healAll()
            try await cluster.waitForConvergence()
            #expect(try await ref.ask(.get).count == 30)
            // Retrying an acknowledged key changes nothing.
            #expect(try await ref.ask(.increment, idempotencyKey: "increment-7").count == 8)
            #expect(try await ref.ask(.get).count == 30)
        }
    }
}

@Suite("Clients and forwarding", .timeLimit(.minutes(1)))
struct ClientForwardingClusterTests {
    @Test("a client's call to a node that does not own the actor is forwarded once to the owner")
    func forwarded() async throws {
        try await withTestCluster(nodes: 3, transport: .loopbackTCP, register: { $0.registerExamples() }) { cluster in
            let entry = cluster.node(0)
            let owner = cluster.node(2)
            let key = keys(ownedBy: owner.nodeID, on: entry, count: 1)[0]
            let client = try await PlexClient.connect(
                to: entry.address, clusterName: "test", secret: Array("test-secret-0123456789".utf8))
            let reply = try await client.ask(Counter.self, key: key, .increment)
            #expect(reply.node == owner.nodeID.rawValue)
            let json = try await client.call(ActorID(typeName: "counter", key: key), json: Array(#"{"get":{}}"#.utf8))
            #expect(String(decoding: json, as: UTF8.self) == #"{"count":1,"node":"node-2"}"#)
            #expect(!entry.isActive(ActorID(typeName: "counter", key: key)))
            #expect(owner.isActive(ActorID(typeName: "counter", key: key)))
            let bad = await #expect(throws: CallError.self) {
                try await client.call(ActorID(typeName: "counter", key: key), json: Array("not json".utf8))
            }
            #expect(bad?.code == .invalidRequest)
            let unknown = await #expect(throws: CallError.self) {
                try await client.call(ActorID(typeName: "nope", key: "x"), json: Array("{}".utf8))
            }
            #expect(unknown?.code == .unknownActorType)
            let status = try await client.status()
            #expect(status.members.map(\.nodeID) == ["node-0", "node-1", "node-2"])
            #expect(status.members.allSatisfy { $0.state == "up" })
            await client.close()
        }
    }
}
