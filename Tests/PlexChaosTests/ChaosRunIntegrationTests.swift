import Foundation
import PlexChaos
import PlexTestKit
import Testing

/// The chaos runner end to end, on real `plex node` processes (`PLEX_INTEGRATION=1`, `PLEX_BIN`): a check of
/// its checks. Sabotage that deletes a node's data directory loses acknowledged deposits, and the runner must
/// say so; the survivable faults are exercised by `scripts/chaos.sh`.
@Suite("Chaos run", .serialized, .enabled(if: NodeProcess.binary != nil), .timeLimit(.minutes(3)))
struct ChaosRunIntegrationTests {
    @Test("a node's data directory deleted under load: the run reports the lost deposits and fails")
    func sabotageIsCaught() async throws {
        let directory =
            FileManager.default.temporaryDirectory.path + "/plex-chaos-it-\(UInt32.random(in: 0...UInt32.max))"
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = ChaosConfiguration(
            plexBinary: NodeProcess.binary ?? "", directory: directory, duration: .seconds(12), seed: 4, nodes: 3,
            faults: [.wipe], ledgers: 6, callersPerNode: 1, settle: .seconds(60))
        configuration.logsProgress = false
        let outcome = try await ChaosRun(configuration: configuration).run()
        #expect(outcome.faults >= 1)
        #expect(outcome.audit.acknowledged > 0)
        #expect(!outcome.audit.lost.isEmpty, "deposits acknowledged by the wiped node's ledgers are gone")
        #expect(!outcome.audit.passed)
        #expect(outcome.summary.hasPrefix("chaos: seconds="))
        #expect(outcome.summary.contains(" lost=\(outcome.audit.lost.count) "))
    }
}
