import Foundation
import PlexCore
import PlexExamples
import PlexJournal
import PlexSpaces
import PlexTestKit
import Testing

@testable import PlexCluster

/// Rings on reminders: `arm` sets one, each ring is recorded, and a ring with `remaining > 1` sets itself again.
struct Alarm: VirtualActor {
    static let typeName = "alarm"
    static let durability = Durability.durable(checkpointEvery: 100)

    struct State: ActorState {
        var rings: [String] = []
        var keys: [String] = []
    }

    enum Request: Codable, Sendable {
        case arm(label: String, milliseconds: Int, times: Int)
        case ring(label: String, remaining: Int)
        case cancel(label: String)
        case wrongType
        case status
    }

    struct Reply: Codable, Sendable, Hashable {
        var rings: [String]
        var keys: [String]
        var node: String
    }

    func handle(_ request: Request, state: inout State, context: ActorContext) async throws -> Reply {
        switch request {
        case .arm(let label, let milliseconds, let times):
            try await context.schedule(
                Request.ring(label: label, remaining: times), after: .milliseconds(milliseconds), name: label)
        case .ring(let label, let remaining):
            state.rings.append(label)
            state.keys.append(context.idempotencyKey ?? "")
            if remaining > 1 {
                try await context.schedule(
                    Request.ring(label: label, remaining: remaining - 1), after: .milliseconds(20), name: label)
            }
        case .cancel(let label):
            try context.cancelReminder(label)
        case .wrongType:
            try await context.schedule("not a request", after: .seconds(1), name: "wrong")
        case .status:
            break
        }
        return Reply(rings: state.rings, keys: state.keys, node: context.nodeID.rawValue)
    }
}

/// The same actor without a journal: reminders are refused.
struct EphemeralAlarm: VirtualActor {
    static let typeName = "ephemeral-alarm"
    typealias State = Alarm.State
    typealias Request = Alarm.Request
    func handle(_ request: Request, state: inout State, context: ActorContext) async throws -> Alarm.Reply {
        try await Alarm().handle(request, state: &state, context: context)
    }
}

func millisecondsSince1970() -> Int64 {
    Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
}

@Suite("Durable reminders", .timeLimit(.minutes(2)))
struct ReminderTests {
    func register(_ node: PlexNode) {
        node.register(Alarm.self)
        node.register(EphemeralAlarm.self)
    }

    @Test("a reminder fires through the handler with its own idempotency key, and can set itself again")
    func periodic() async throws {
        try await withTestCluster(nodes: 1, transport: .inMemory, register: register) { cluster in
            let node = cluster.node(0)
            let alarm = node.actor(Alarm.self, key: "periodic")
            #expect(try await alarm.ask(.arm(label: "tick", milliseconds: 50, times: 3)).rings.isEmpty)
            try await eventually("three rings") { try await alarm.ask(.status).rings.count == 3 }
            let reply = try await alarm.ask(.status)
            #expect(reply.rings == ["tick", "tick", "tick"])
            #expect(reply.keys.allSatisfy { $0.hasPrefix("plex.reminder/tick/") })
            #expect(Set(reply.keys).count == 3)
            try await eventually("the last delivery removed the reminder") {
                try await node.journal.reminders(for: alarm.id).isEmpty
            }
            // Each ring is a journaled message whose key holds its fire time.
            let rings = try await node.journal.entries(for: alarm.id).filter {
                $0.idempotencyKey?.hasPrefix("plex.reminder/") == true
            }
            #expect(rings.count == 3)
        }
    }

    @Test(
        "a reminder set before a crash (strictly before it is due) fires after the restart, once",
        arguments: TestTransport.allCases)
    func survivesCrash(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 2, transport: transport, register: register) { cluster in
            let caller = cluster.node(0)
            let alarm = caller.actor(Alarm.self, key: key(Alarm.self, ownedBy: cluster.node(1).nodeID, on: caller))
            _ = try await alarm.ask(.arm(label: "wake", milliseconds: 2_000, times: 1))
            let set = try await cluster.node(1).journal.reminders(for: alarm.id)
            let due = try #require(set.first?.due)
            #expect(set.map(\.name) == ["wake"])
            await cluster.crash(1)
            // The crashed node stopped before the reminder was due, so it cannot have rung there: only the
            // restarted node can deliver it. (A slow machine that takes 2 s to crash fails here, not silently.)
            try #require(millisecondsSince1970() < due, "the crash finished before the reminder was due")
            let restarted = try await cluster.restart(1)
            try await cluster.waitUntil(caller, isConnectedTo: restarted)
            try await eventually("it rang after the restart") { try await alarm.ask(.status).rings == ["wake"] }
            try await eventually("and was removed") { try await restarted.journal.reminders(for: alarm.id).isEmpty }
            let reply = try await alarm.ask(.status)
            #expect(reply.rings == ["wake"])
            #expect(reply.keys == ["plex.reminder/wake/\(due)"])
            // Journaled by the restarted node, once, at or after its due time.
            let rings = try await restarted.journal.entries(for: alarm.id).filter {
                $0.idempotencyKey?.hasPrefix("plex.reminder/") == true
            }
            #expect(rings.count == 1)
            #expect(rings.allSatisfy { $0.time >= due })
        }
    }

    @Test("a cancelled reminder does not fire; one set again replaces the first")
    func cancelAndReplace() async throws {
        try await withTestCluster(nodes: 1, transport: .inMemory, register: register) { cluster in
            let alarm = cluster.node(0).actor(Alarm.self, key: "cancel")
            _ = try await alarm.ask(.arm(label: "cancelled", milliseconds: 150, times: 1))
            _ = try await alarm.ask(.cancel(label: "cancelled"))
            _ = try await alarm.ask(.arm(label: "replaced", milliseconds: 150, times: 1))
            _ = try await alarm.ask(.arm(label: "replaced", milliseconds: 350, times: 2))
            _ = try await alarm.ask(.arm(label: "probe", milliseconds: 700, times: 1))
            // Once nothing is pending, every reminder that existed has been delivered: the cancelled one never
            // was, and the replaced one rang as set the second time (twice).
            try await eventually("every pending reminder delivered") {
                let pending = try await cluster.node(0).journal.reminders(for: alarm.id)
                let rings = try await alarm.ask(.status).rings
                return pending.isEmpty && rings.contains("probe")
            }
            let rings = try await alarm.ask(.status).rings
            #expect(rings.filter { $0 == "replaced" }.count == 2)
            #expect(!rings.contains("cancelled"))
        }
    }

    @Test("reminders move with their actor when its owner leaves")
    func movesWithHandoff() async throws {
        try await withTestCluster(nodes: 3, transport: .inMemory, register: register) { cluster in
            let caller = cluster.node(0)
            let leaving = cluster.node(2).nodeID
            let alarm = caller.actor(Alarm.self, key: key(Alarm.self, ownedBy: leaving, on: caller))
            #expect(try await alarm.ask(.arm(label: "later", milliseconds: 800, times: 1)).node == leaving.rawValue)
            let (moved, failed) = await cluster.leave(2)
            #expect(moved == 1 && failed == 0)
            try await eventually("it rang on the new owner") { try await alarm.ask(.status).rings == ["later"] }
            #expect(try await alarm.ask(.status).node != leaving.rawValue)
        }
    }

    @Test("reminders need a durable type and the actor's own request type")
    func refusals() async throws {
        try await withTestCluster(nodes: 1, transport: .inMemory, register: register) { cluster in
            let node = cluster.node(0)
            let ephemeral = await #expect(throws: CallError.self) {
                try await node.actor(EphemeralAlarm.self, key: "e").ask(.arm(label: "x", milliseconds: 10, times: 1))
            }
            #expect(ephemeral?.message.contains("durable") == true)
            let wrong = await #expect(throws: CallError.self) {
                try await node.actor(Alarm.self, key: "w").ask(.wrongType)
            }
            #expect(wrong?.message.contains("must carry") == true)
            let reminders = try await node.journal.reminders(for: ActorID(typeName: Alarm.typeName, key: "w"))
            #expect(reminders.isEmpty)
        }
    }
}

/// Keys of `Alarm` actors that `owner` owns, as `node` sees the ring.
func alarmKeys(ownedBy owner: NodeID, on node: PlexNode, count: Int, prefix: String) -> [String] {
    var result: [String] = []
    var i = 0
    while result.count < count {
        if node.owner(of: ActorID(typeName: Alarm.typeName, key: "\(prefix)\(i)")) == owner {
            result.append("\(prefix)\(i)")
        }
        i += 1
    }
    return result
}

/// One logged failed attempt to deliver a reminder.
struct LoggedAttempt: Equatable {
    var attempt: Int
    var retryMilliseconds: Int
}

/// The logged failed attempts to deliver `actor`'s reminders, in order.
func loggedAttempts(of actor: ActorID, in logs: LogCapture) -> [LoggedAttempt] {
    logs.all.filter { $0.contains("reminder not delivered") && $0.contains(" actor.id=\(actor) ") }.map { line in
        let fields = line.split(separator: " ")
        func value(_ name: String) -> Int {
            fields.first { $0.hasPrefix("\(name)=") }.flatMap { Int($0.dropFirst(name.count + 1)) } ?? -1
        }
        return LoggedAttempt(attempt: value("attempt"), retryMilliseconds: value("retry.ms"))
    }
}

@Suite("Reminders that cannot be delivered", .timeLimit(.minutes(2)))
struct UndeliverableReminderTests {
    @Test(
        "300 undeliverable reminders due first do not hold up a deliverable one; each is retried with backoff and logged once per attempt"
    )
    func noStarvation() async throws {
        try await withTestCluster(nodes: 2, transport: .inMemory, register: { $0.register(Alarm.self) }) { cluster in
            let node = cluster.node(0)
            let payload = try BinaryMessageCodec().encode(Alarm.Request.ring(label: "never", remaining: 1))
            // Three ways not to be deliverable here, 100 each: a type not registered on the node, an actor that
            // another node owns, an actor whose journal does not recover.
            let unregistered = (0..<100).map { ActorID(typeName: "unregistered", key: "u\($0)") }
            let elsewhere = alarmKeys(ownedBy: cluster.node(1).nodeID, on: node, count: 100, prefix: "elsewhere").map {
                ActorID(typeName: Alarm.typeName, key: $0)
            }
            let broken = alarmKeys(ownedBy: node.nodeID, on: node, count: 100, prefix: "broken").map {
                ActorID(typeName: Alarm.typeName, key: $0)
            }
            for id in broken {
                try await node.journal.append([
                    JournalEntry(actor: id, sequence: 1, kind: .message, time: 0, payload: [0xFF, 0x00, 0x13])
                ])
            }
            let clock = ContinuousClock()
            let started = clock.now
            // All due ten seconds ago: they come first, ahead of the deliverable one.
            let past = millisecondsSince1970() - 10_000
            let undeliverable = unregistered + elsewhere + broken
            try await node.journal.append(
                [],
                reminders: undeliverable.enumerated().map {
                    .set(Reminder(actor: $0.element, name: "stuck", due: past + Int64($0.offset), payload: payload))
                })

            let alarm = node.actor(Alarm.self, key: key(Alarm.self, ownedBy: node.nodeID, on: node))
            _ = try await alarm.ask(.arm(label: "due", milliseconds: 200, times: 1))
            try await eventually("the deliverable reminder rang", within: .seconds(5)) {
                try await alarm.ask(.status).rings == ["due"]
            }

            // Each undeliverable one is tried, and logged, once per backoff step (100 ms, 200 ms, 400 ms, …), not
            // once per look (every 100 ms).
            let watched = [unregistered[0], elsewhere[0], broken[0], unregistered[99], broken[99]]
            // Six attempts take 3.1 s of backoff; a look every 100 ms would have made some 30 by then.
            try await eventually("six attempts of each logged", within: .seconds(30)) {
                watched.allSatisfy { loggedAttempts(of: $0, in: cluster.logs).count >= 6 }
            }
            let snapshot = watched.map { loggedAttempts(of: $0, in: cluster.logs) }
            // Attempt k comes at least 100 · (2^(k-1) - 1) ms after the first.
            let elapsed = Double((clock.now - started) / .milliseconds(1))
            let mostAttempts = 1 + Int(log2(elapsed / 100 + 1))
            for (id, attempts) in zip(watched, snapshot) {
                #expect(attempts.map(\.attempt) == Array(1...attempts.count), "\(id)")
                #expect(
                    attempts.map(\.retryMilliseconds) == attempts.indices.map { 100 << $0 }, "\(id)")
                #expect(attempts.count <= mostAttempts, "\(id): \(attempts.count) attempts in \(elapsed) ms")
            }
            // None was dropped: they stay, to be tried again.
            for id in undeliverable.enumerated().filter({ $0.offset % 25 == 0 }).map(\.element) {
                #expect(try await node.journal.reminders(for: id).map(\.name) == ["stuck"], "\(id)")
            }
        }
    }
}

@Suite("Reminder retries")
struct ReminderRetriesTests {
    let key = ReminderRetries.Key(
        Reminder(actor: ActorID(typeName: "alarm", key: "a"), name: "r", due: 5, payload: []))

    @Test("a failed reminder waits 100 ms, then twice as long after each failure, up to a minute")
    func backoff() throws {
        var retries = ReminderRetries()
        var now: UInt64 = 1_000
        var delays: [UInt64] = []
        for _ in 0..<14 {
            let first = retries.begin(key, at: now)
            let again = retries.begin(key, at: now)
            #expect(first && !again)  // the second finds it in flight
            let failed = retries.finish(key, delivered: false, at: now)
            let backoff = try #require(failed)
            delays.append(backoff.delay)
            let early = retries.begin(key, at: now + backoff.delay - 1)
            #expect(!early)
            now += backoff.delay
        }
        let milliseconds = delays.map { $0 / 1_000_000 }
        #expect(
            milliseconds == [
                100, 200, 400, 800, 1_600, 3_200, 6_400, 12_800, 25_600, 51_200, 60_000, 60_000, 60_000, 60_000,
            ])
        let due = retries.begin(key, at: now)
        #expect(due)
        let delivered = retries.finish(key, delivered: true, at: now)
        #expect(delivered == nil)
        #expect(retries.backoffs.isEmpty && retries.inFlight.isEmpty)
    }

    @Test("a pass over the due reminders forgets the backoffs of those it did not find")
    func forgetsGone() {
        var retries = ReminderRetries()
        let other = ReminderRetries.Key(
            Reminder(actor: ActorID(typeName: "alarm", key: "b"), name: "r", due: 5, payload: []))
        for key in [key, other] {
            _ = retries.begin(key, at: 0)
            retries.finish(key, delivered: false, at: 0)
        }
        retries.endPass()  // both failed in this pass
        #expect(retries.backoffs.count == 2)
        let waiting = retries.begin(key, at: 1)  // found again, still waiting
        #expect(!waiting)
        retries.endPass()  // `other` was not found: cancelled, delivered elsewhere or moved
        #expect(Set(retries.backoffs.keys) == [key])
        let afresh = retries.begin(other, at: 1)  // found again later: no backoff left
        #expect(afresh)
        #expect(retries.inFlight == [other])
    }
}
