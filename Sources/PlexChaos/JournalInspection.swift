internal import Foundation
internal import PlexExamples
internal import PlexJournal
internal import PlexSpaces

/// What a stopped node's journal holds of the ledgers, read from copies (the nodes' own files stay as they
/// were left, for `plex journal inspect`).
public struct JournalInspection: Sendable, Hashable {
    /// For each ledger held live (entries or a checkpoint, and not handed away: a handoff leaves a tombstone on
    /// the node that handed it), by ledger key then node id: how many applied deposits carry each idempotency key.
    public var held: [String: [String: [String: Int]]] = [:]
    /// For each ledger with copies kept aside because they did not extend the history held (another lineage:
    /// evidence of a fork), by ledger key then node id: one description per copy.
    public var keptAside: [String: [String: [String]]] = [:]

    /// Reads the journals of stopped nodes.
    /// - Parameters:
    ///   - dataDirectories: Each node's data directory, by node id. The nodes must have exited.
    ///   - copies: Where the journals are copied before they are opened.
    /// - Throws: ``JournalError`` when a journal cannot be read, or a file error when it cannot be copied.
    public static func read(dataDirectories: [String: String], copies: String) async throws -> JournalInspection {
        var inspection = JournalInspection()
        for (node, directory) in dataDirectories.sorted(by: { $0.key < $1.key }) {
            let manager = FileManager.default
            guard manager.fileExists(atPath: "\(directory)/journal.sqlite") else { continue }
            let copy = "\(copies)/\(node)"
            try? manager.removeItem(atPath: copy)
            try manager.createDirectory(atPath: copy, withIntermediateDirectories: true)
            for file in try manager.contentsOfDirectory(atPath: directory) where file.hasPrefix("journal") {
                try manager.copyItem(atPath: "\(directory)/\(file)", toPath: "\(copy)/\(file)")
            }
            let journal = try await Journal.open(path: "\(copy)/journal.sqlite")
            do {
                try await inspection.add(journal, of: node)
            } catch {
                await journal.close()
                throw error
            }
            await journal.close()
        }
        return inspection
    }

    private mutating func add(_ journal: Journal, of node: String) async throws {
        for actor in try await journal.heldActors() where actor.typeName == Ledger.typeName {
            held[actor.key, default: [:]][node] = Self.appliedKeys(try await journal.entries(for: actor))
        }
        for copy in try await journal.divergedCopies() where copy.transfer.actor.typeName == Ledger.typeName {
            let lineage = copy.transfer.lineage.map { "lineage \($0)" } ?? "no lineage"
            let description =
                "\(copy.reason == .refused ? "refused from" : "superseded by") \(copy.from) (\(lineage), epoch "
                + "\(copy.transfer.epoch), \(copy.transfer.entries.count) entries)"
            keptAside[copy.transfer.actor.key, default: [:]][node, default: []].append(description)
        }
    }

    /// How many applied messages (those with a reply) carry each idempotency key.
    static func appliedKeys(_ entries: [JournalEntry]) -> [String: Int] {
        var counts: [String: Int] = [:]
        for entry in entries where entry.kind == .message && entry.reply != nil {
            if let key = entry.idempotencyKey { counts[key, default: 0] += 1 }
        }
        return counts
    }
}
