import PlexCluster
import PlexCore
import PlexTestKit
import Testing

/// A durable actor that logs each message it handles.
struct ChattyTally: VirtualActor {
    static let typeName = "chatty-tally"
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

@Suite("The handler's logger", .timeLimit(.minutes(1)))
struct ActorLoggerTests {
    @Test("a handler's log lines carry node.id, actor.id and call.id, and a replay does not log them again")
    func metadataAndReplay() async throws {
        try await withTestCluster(nodes: 1, transport: .inMemory, register: { $0.register(ChattyTally.self) }) {
            cluster in
            let node = cluster.node(0)
            #expect(try await node.actor(ChattyTally.self, key: "a").ask(2) == 2)
            #expect(try await node.actor(ChattyTally.self, key: "a").ask(3) == 5)
            let lines = cluster.logs.lines(containing: "tally now")
            #expect(lines.count == 2, "\(lines)")
            for line in lines {
                #expect(line.contains("node.id=node-0"), "\(line)")
                #expect(line.contains("actor.id=chatty-tally/a"), "\(line)")
                #expect(line.contains("call.id="), "\(line)")
            }
            // Recovery replays both messages through the handler: no new lines.
            await cluster.crash(0)
            _ = try await cluster.restart(0)
            #expect(try await cluster.node(0).actor(ChattyTally.self, key: "a").ask(1) == 6)
            #expect(cluster.logs.lines(containing: "tally now").count == 3, "only the new message logged")
        }
    }
}
