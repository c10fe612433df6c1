import PlexCluster
import PlexCore
import PlexTestKit
import Testing

@Suite("The handler's logger", .timeLimit(.minutes(1)))
struct ActorLoggerTests {
    @Test("a handler's log lines carry node.id, actor.id and call.id, and a replay does not log them again")
    func metadataAndReplay() async throws {
        try await withTestCluster(nodes: 1, transport: .inMemory, register: { $0.register(TracedTally.self) }) {
            cluster in
            let node = cluster.node(0)
            #expect(try await node.actor(TracedTally.self, key: "a").ask(2) == 2)
            #expect(try await node.actor(TracedTally.self, key: "a").ask(3) == 5)
            let lines = cluster.logs.lines(containing: "tally now")
            #expect(lines.count == 2, "\(lines)")
            for line in lines {
                #expect(line.contains("node.id=node-0"), "\(line)")
                #expect(line.contains("actor.id=traced-tally/a"), "\(line)")
                #expect(line.contains("call.id="), "\(line)")
            }
            // Recovery replays both messages through the handler: no new lines.
            await cluster.crash(0)
            _ = try await cluster.restart(0)
            #expect(try await cluster.node(0).actor(TracedTally.self, key: "a").ask(1) == 6)
            #expect(cluster.logs.lines(containing: "tally now").count == 3, "only the new message logged")
        }
    }
}
