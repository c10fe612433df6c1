import Foundation
import PlexSpaces
import PlexTestKit
import Testing

/// Charges through a side effect that declines amounts over 100; the handler records the decline.
struct Checkout: VirtualActor {
    static let typeName = "checkout"
    static let durability = Durability.durable(checkpointEvery: 100)
    typealias State = [String]
    static func initialState(for id: ActorID) -> [String] { [] }

    func handle(_ amount: Int, state: inout [String], context: ActorContext) async throws -> [String] {
        do {
            state.append(
                try await context.run("charge") {
                    guard amount <= 100 else {
                        throw ActorFailure(code: "declined", message: "card declined for \(amount)")
                    }
                    return "charged \(amount)"
                })
        } catch let failure as ActorFailure {
            state.append("declined: \(failure.message)")
        }
        return state
    }
}

/// `plex journal inspect` on a journal written in this process by a type the `plex` binary does not know.
@Suite("plex journal inspect: effects", .enabled(if: NodeProcess.binary != nil), .timeLimit(.minutes(1)))
struct JournalInspectEffectTests {
    @Test("an effect that threw is listed under its message, with its position, name, error type, code and message")
    func failedEffectIsShown() async throws {
        let directory = FileManager.default.temporaryDirectory.path + "/plex-it-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = NodeConfiguration(
            dataDirectory: directory, secret: Array("inspect-secret-0123456789".utf8))
        configuration.journal.keepHistory = true
        let node = try await PlexNode.start(
            configuration, transport: .inMemory(InMemoryNetwork())
        ) { $0.register(Checkout.self) }
        let checkout = node.actor(Checkout.self, key: "c")
        _ = try await checkout.ask(20)
        #expect(try await checkout.ask(500) == ["charged 20", "declined: card declined for 500"])
        await node.shutdown()

        let inspect = try NodeProcess.launch(
            NodeProcess.binary ?? "", ["journal", "inspect", "checkout/c", "--data-dir", directory])
        #expect(try await inspect.waitForExit() == 0)
        let lines = inspect.standardOutput.split(separator: "\n").map(String.init)
        let effectLines = lines.filter { $0.contains("effect") }
        #expect(
            effectLines.map { $0.trimmingCharacters(in: .whitespaces) } == [
                "effect 1 'charge' threw ActorFailure(declined): card declined for 500"
            ], "\(inspect.standardOutput)")
        // It follows the row of the second message.
        let index = try #require(lines.firstIndex(of: effectLines.first ?? ""))
        #expect(lines[index - 1].hasPrefix("2 ") && lines[index - 1].contains("replied"), "\(inspect.standardOutput)")
    }
}
