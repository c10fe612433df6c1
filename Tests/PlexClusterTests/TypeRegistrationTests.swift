import FoundationEssentials
import PlexCore
import PlexExamples
import PlexSpaces
import PlexTestKit
import Testing

/// A type that claims the counter's name.
struct ImpostorCounter: VirtualActor {
    static let typeName = Counter.typeName
    struct State: ActorState { var count = 0 }
    func handle(_ request: Int, state: inout State, context: ActorContext) async throws -> Int { request }
}

/// A type no node registers.
struct UnregisteredActor: VirtualActor {
    static let typeName = "unregistered"
    struct State: ActorState {}
    func handle(_ request: Int, state: inout State, context: ActorContext) async throws -> Int { request }
}

@Suite("Actor type registration", .timeLimit(.minutes(1)))
struct TypeRegistrationTests {
    @Test("a type name registered for two Swift types is refused when the node starts, with a clear error")
    func nameTakenRefused() async throws {
        let directory = FileManager.default.temporaryDirectory.path + "/plex-tr-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = TestCluster.configuration(directory: directory, seeds: [])
        let error = await #expect(throws: NodeError.self) {
            _ = try await PlexNode.start(configuration, transport: .inMemory(InMemoryNetwork())) { node in
                node.registerExamples()
                node.register(ImpostorCounter.self)
            }
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("'counter': the name is already registered") == true)
    }

    @Test("a local ask of a type this node does not register answers unknownActorType; a registered one runs")
    func unknownTypeHere() async throws {
        try await withTestCluster(nodes: 1, transport: .inMemory, register: { $0.registerExamples() }) { cluster in
            let node = cluster.node(0)
            let error = await #expect(throws: CallError.self) {
                try await node.actor(UnregisteredActor.self, key: "u").ask(1)
            }
            #expect(error?.code == .unknownActorType)
            let counter = node.actor(Counter.self, key: "c")
            let first = try await counter.ask(.increment)
            // Asked again once live: the live activation is found without the registry.
            let second = try await counter.ask(.increment)
            #expect((first.count, second.count) == (1, 2))
        }
    }
}
