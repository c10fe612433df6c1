import ArgumentParser
import Foundation
import PlexChaos

/// Runs the chaos suite: see `scripts/chaos.sh`.
@main
struct PlexChaosCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plex-chaos",
        abstract: "Real plex node processes under idempotent deposits and faults; checks nothing is lost or forked.",
        discussion: """
            Starts --nodes `plex node` processes on loopback with fresh data directories, runs deposits with \
            unique idempotency keys through every node, and injects faults drawn from --seed. At the end it \
            heals every fault, retries every unacknowledged key to completion, reads every ledger through every \
            node, stops the nodes and reads their journals. Beside the deposits it starts `steps` workflows \
            (a retried activity and a timer per step) and waits for each to complete. It prints one line, \
            `chaos: seconds=S faults=F acked=N lost=L doubled=D forks=K workflows=W wf-lost=X wf-unfinished=Y`, \
            and exits 0 only if L, D, K, X and Y are 0 and every key completed (1 otherwise; 2 when the run \
            could not start). Progress goes to stderr.
            """)

    @Option(help: "Seconds of load and faults (the end checks come after).")
    var seconds = 120
    @Option(help: "Seed of the faults, their moments and the deposits.")
    var seed: UInt64 = 1
    @Option(help: "Number of nodes.")
    var nodes = 3
    @Option(
        help: """
            Comma-separated kinds of fault (default: \(FaultKind.survivable.map(\.rawValue).joined(separator: ","))). \
            'wipe' (a node's data directory deleted) is sabotage that checks the checks: it must fail the run.
            """,
        transform: Self.parseFaults)
    var faults: [FaultKind] = FaultKind.survivable
    @Option(help: "Number of ledgers the deposits spread over.")
    var ledgers = 24
    @Option(help: "Callers per node.")
    var callersPerNode = 2
    @Option(help: "The nodes' unreachable_after_ms; fault durations scale with it.")
    var unreachableAfterMs = 1000
    @Option(help: "Seconds the end may take to heal, complete every key and read every ledger.")
    var settleSeconds = 120
    @Option(help: "The plex binary (default: PLEX_BIN, else `plex` beside this program).")
    var plex: String?
    @Option(help: "Directory for data, logs and journal copies (default: a new temporary one).")
    var directory: String?
    @Flag(help: "Keep the directory when the run passes (it is always kept when it fails).")
    var keep = false

    static func parseFaults(_ text: String) throws -> [FaultKind] {
        try text.split(separator: ",").map { name in
            guard let kind = FaultKind(rawValue: name.trimmingCharacters(in: .whitespaces)) else {
                throw ValidationError(
                    "unknown fault '\(name)' (known: \(FaultKind.allCases.map(\.rawValue).joined(separator: ", ")))")
            }
            return kind
        }
    }

    func validate() throws {
        guard seconds > 0, settleSeconds > 0 else {
            throw ValidationError("--seconds and --settle-seconds must be positive")
        }
        guard nodes >= 2 else { throw ValidationError("--nodes must be at least 2") }
        guard !faults.isEmpty else { throw ValidationError("--faults must name at least one kind") }
        guard ledgers > 0, callersPerNode > 0 else {
            throw ValidationError("--ledgers and --callers-per-node must be positive")
        }
        guard unreachableAfterMs >= 200 else { throw ValidationError("--unreachable-after-ms must be at least 200") }
    }

    func run() async throws {
        let binary =
            plex ?? ProcessInfo.processInfo.environment["PLEX_BIN"]
            ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("plex")
            .path
        let directory =
            self.directory
            ?? FileManager.default.temporaryDirectory.path + "/plex-chaos-\(seed)-\(UInt32.random(in: 0...UInt32.max))"
        let configuration = ChaosConfiguration(
            plexBinary: binary, directory: directory, duration: .seconds(seconds), seed: seed, nodes: nodes,
            faults: faults, ledgers: ledgers, callersPerNode: callersPerNode,
            heartbeat: .milliseconds(max(20, unreachableAfterMs / 10)),
            unreachableAfter: .milliseconds(unreachableAfterMs),
            settle: .seconds(settleSeconds))
        let outcome: ChaosOutcome
        do {
            outcome = try await ChaosRun(configuration: configuration).run()
        } catch let failure as ChaosSetupFailure {
            FileHandle.standardError.write(Data("plex-chaos: \(failure)\n".utf8))
            throw ExitCode(2)
        }
        print(outcome.summary)
        if outcome.audit.passed {
            if !keep { try? FileManager.default.removeItem(atPath: directory) }
        } else {
            FileHandle.standardError.write(
                Data("plex-chaos: failed; data, logs and journal copies in \(directory)\n".utf8))
            throw ExitCode(1)
        }
    }
}
