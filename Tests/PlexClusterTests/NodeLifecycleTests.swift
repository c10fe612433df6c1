import Foundation
import PlexExamples
import PlexSpaces
import PlexTestKit
import Testing

@Suite("Node lifecycle")
struct NodeLifecycleTests {
    func configuration(_ directory: String) -> NodeConfiguration {
        TestCluster.configuration(directory: directory, seeds: [])
    }

    @Test("the node id persists in the data directory and every start bumps the incarnation")
    func identity() async throws {
        let directory = FileManager.default.temporaryDirectory.path + "/plex-lifecycle-\(UUID())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let network = InMemoryNetwork()
        var first = configuration(directory)
        first.nodeID = try NodeID("keeper")
        let a = try await PlexNode.start(first, transport: .inMemory(network))
        #expect(a.incarnation == 1)
        await a.shutdown()
        let b = try await PlexNode.start(configuration(directory), transport: .inMemory(network))
        #expect(b.nodeID.rawValue == "keeper")
        #expect(b.incarnation == 2)
        await b.shutdown()
        var other = configuration(directory)
        other.nodeID = try NodeID("someone-else")
        let error = await #expect(throws: NodeError.self) {
            _ = try await PlexNode.start(other, transport: .inMemory(network))
        }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.contains("node_id") == true)
    }

    @Test("a second node on the same data directory is refused while the first runs")
    func exclusiveDataDirectory() async throws {
        let directory = FileManager.default.temporaryDirectory.path + "/plex-lifecycle-\(UUID())"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let network = InMemoryNetwork()
        let first = try await PlexNode.start(configuration(directory), transport: .inMemory(network))
        let error = await #expect(throws: NodeError.self) {
            _ = try await PlexNode.start(configuration(directory), transport: .inMemory(network))
        }
        #expect(error?.code == .dataDirectory)
        #expect(error?.message.contains("in use") == true)
        await first.shutdown()
        let second = try await PlexNode.start(configuration(directory), transport: .inMemory(network))
        #expect(second.incarnation == 2)
        await second.shutdown()
    }

    @Test(
        "invalid configurations are refused with the field named",
        arguments: [
            "secret", "cluster_name", "unreachable_after", "max_activations",
        ])
    func invalid(field: String) async throws {
        var bad = configuration(FileManager.default.temporaryDirectory.path + "/plex-lifecycle-\(UUID())")
        switch field {
        case "secret": bad.secret = Array("short".utf8)
        case "cluster_name": bad.clusterName = ""
        case "unreachable_after": bad.membership.unreachableAfter = .milliseconds(1)
        default: bad.activation.maximumActivations = 0
        }
        let error = #expect(throws: NodeError.self) { try bad.validate() }
        #expect(error?.code == .invalidConfiguration)
        #expect(error?.message.hasPrefix(field) == true)
    }
}
