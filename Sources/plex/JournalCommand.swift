import ArgumentParser
import Foundation
import PlexExamples
import PlexJournal
import PlexSpaces

struct JournalCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "journal", abstract: "Inspect a node's journal (its data directory).",
        subcommands: [Stats.self, Inspect.self])

    struct Location: ParsableArguments {
        @Option(name: .long, help: "The node's data directory.")
        var dataDir: String

        /// Opens the journal, holding the data directory's lock (a running node holds it and its journal:
        /// the journal is read once the node stopped).
        func open() async throws -> (Journal, DataDirectoryLock) {
            let path = dataDir + "/journal.sqlite"
            guard FileManager.default.fileExists(atPath: path) else {
                throw ConfigurationFailure(message: "data_dir: no journal at \(path)")
            }
            let lock: DataDirectoryLock
            do {
                lock = try DataDirectoryLock(directory: dataDir)
            } catch {
                throw ConfigurationFailure(message: "data_dir: \(error); stop the node to read its journal")
            }
            return (try await Journal.open(path: path), lock)
        }
    }

    struct Stats: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Size, entry and actor counts, checkpoints and their ages.")
        @OptionGroup var location: Location

        func run() async throws {
            let (journal, lock) = try await exitingOnBadConfiguration { try await location.open() }
            defer { withExtendedLifetime(lock) {} }
            let stats = try await journal.statistics()
            let diverged = stats.divergedCopies > 0 ? try await journal.divergedCopies() : []
            await journal.close()
            print("journal \(journal.path)")
            print("  size        \(stats.bytes) bytes")
            print("  entries     \(stats.entries)")
            print("  actors      \(stats.actors)")
            print("  checkpoints \(stats.checkpoints)")
            print("  diverged    \(stats.divergedCopies) copies kept aside")
            for copy in diverged {
                print("    \(copy.transfer.actor): \(describe(copy)) (plex journal inspect \(copy.transfer.actor))")
            }
            if let times = stats.checkpointTimes {
                let now = Int64(Date().timeIntervalSince1970 * 1000)
                print("  checkpoint ages: newest \(age(now - times.upperBound)), oldest \(age(now - times.lowerBound))")
            }
        }
    }

    struct Inspect: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List an actor's entries: sequence, kind, time, size, idempotency key, outcome.")
        @Argument(help: "The actor: type/key.")
        var actor: String
        @OptionGroup var location: Location
        @Option(name: .long, help: "Rebuild and print the actor's state as of this sequence (time travel).")
        var stateAt: UInt64?

        func run() async throws {
            let id = try ActorID(parsing: actor)
            let (journal, lock) = try await exitingOnBadConfiguration { try await location.open() }
            defer { withExtendedLifetime(lock) {} }
            if let stateAt {
                // Closed before the lock goes (a node started right after finds the file free).
                do {
                    try await exitingOnBadConfiguration { try await printState(of: id, at: stateAt, in: journal) }
                } catch {
                    await journal.close()
                    throw error
                }
                await journal.close()
                return
            }
            let checkpoint = try await journal.latestCheckpoint(for: id)
            let entries = try await journal.entries(for: id)
            let lineage = try await journal.lineage(of: id)
            let diverged = try await journal.divergedCopies(of: id)
            await journal.close()
            if let lineage {
                print("lineage \(lineage.id), epoch \(lineage.epoch), last sequence \(lineage.lastSequence)")
            }
            if let checkpoint {
                print(
                    "checkpoint at sequence \(checkpoint.sequence), \(checkpoint.state.count) bytes, \(timestamp(checkpoint.time))"
                )
            }
            print(row(["SEQ", "KIND", "TIME", "SIZE", "IDEMPOTENCY KEY", "OUTCOME"]))
            for entry in entries {
                let size = entry.payload.count + (entry.reply?.count ?? 0)
                let outcome = entry.kind == .message ? (entry.reply == nil ? "failed" : "replied") : ""
                let fields: [String] = [
                    String(entry.sequence), "\(entry.kind)", timestamp(entry.time), String(size),
                    entry.idempotencyKey ?? "-", outcome,
                ]
                print(row(fields))
                for line in failedEffects(of: entry) { print(line) }
            }
            if let checkpoint {
                print("\(entries.count) entries after the checkpoint's sequence \(checkpoint.sequence)")
            } else {
                print("\(entries.count) entries (no checkpoint yet)")
            }
            for copy in diverged {
                print("kept aside: \(describe(copy)), \(copy.transfer.entries.count) entries")
            }
        }
    }
}

/// Replays a bundled durable example type to `sequence` and prints its state as JSON.
func printState(of id: ActorID, at sequence: UInt64, in journal: Journal) async throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    let json: Data
    let reached: UInt64
    switch id.typeName {
    case Ledger.typeName:
        let (state, at) = try await StateInspector.state(of: Ledger.self, key: id.key, at: sequence, in: journal)
        json = try encoder.encode(state)
        reached = at
    default:
        throw ConfigurationFailure(message: "actor: '\(id.typeName)' is not a durable type this plex build knows")
    }
    print("state of \(id) at sequence \(reached): \(String(decoding: json, as: UTF8.self))")
}

/// One line about a copy kept aside: why, from whom, its lineage, epoch and sequences, and when.
func describe(_ copy: DivergedCopy) -> String {
    let reason = copy.reason == .refused ? "refused from" : "own copy replaced by"
    let sequences = copy.transfer.sequences.map { "sequences \($0.lowerBound)...\($0.upperBound)" } ?? "empty"
    return "\(reason) \(copy.from), lineage \(copy.transfer.lineage.map { "\($0)" } ?? "-"), "
        + "epoch \(copy.transfer.epoch), \(sequences), at \(timestamp(copy.time))"
}

/// One line for each side effect of `entry` that threw: its position, name, and the error the journal kept.
func failedEffects(of entry: JournalEntry) -> [String] {
    guard let bytes = entry.effects else { return [] }
    guard let effects = try? EffectLog.decode(bytes) else { return ["        effects: do not decode"] }
    return effects.enumerated().compactMap { index, effect in
        guard let failure = effect.failure else { return nil }
        let type = failure.callErrorCode.map { "CallError.\(CallError.Code(rawValue: $0))" } ?? failure.typeName
        let code = failure.code.map { "(\($0))" } ?? ""
        return "        effect \(index + 1) '\(effect.name)' threw \(type)\(code): \(failure.message)"
    }
}

/// Columns padded to fixed widths.
func row(_ fields: [String]) -> String {
    let widths = [8, 16, 26, 8, 18, 0]
    var line = ""
    for (field, width) in zip(fields, widths) {
        line += width > 0 ? field.padding(toLength: max(width, field.count + 1), withPad: " ", startingAt: 0) : field
    }
    return line
}

func timestamp(_ milliseconds: Int64) -> String {
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    return formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1000))
}

func age(_ milliseconds: Int64) -> String {
    milliseconds < 60_000 ? "\(milliseconds / 1000) s" : "\(milliseconds / 60_000) min"
}
