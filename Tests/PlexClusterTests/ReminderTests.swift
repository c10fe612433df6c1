import PlexCore
import PlexExamples
import PlexJournal
import PlexSpaces
import PlexTestKit
import Testing

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

    @Test("a reminder set before a crash fires after the restart, once", arguments: TestTransport.allCases)
    func survivesCrash(transport: TestTransport) async throws {
        try await withTestCluster(nodes: 2, transport: transport, register: register) { cluster in
            let caller = cluster.node(0)
            let alarm = caller.actor(Alarm.self, key: key(Alarm.self, ownedBy: cluster.node(1).nodeID, on: caller))
            _ = try await alarm.ask(.arm(label: "wake", milliseconds: 400, times: 1))
            await cluster.crash(1)
            let restarted = try await cluster.restart(1)
            try await cluster.waitUntil(caller, isConnectedTo: restarted)
            try await eventually("it rang after the restart") { try await alarm.ask(.status).rings == ["wake"] }
            try await eventually("and was removed") { try await restarted.journal.reminders(for: alarm.id).isEmpty }
            #expect(try await alarm.ask(.status).rings == ["wake"])
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
