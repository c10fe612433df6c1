internal import Foundation
public import PlexJournal
internal import PlexExamples
internal import PlexSpaces

/// Reads what stopped nodes' journals hold of the ledgers, on copies (the nodes' own files stay as they were
/// left, for `plex journal inspect`).
public enum JournalInspection {
    /// For every ledger held live by a node (entries or a checkpoint, and not handed away: a handoff leaves a
    /// tombstone on the node that handed it), the idempotency keys of its applied deposits with their counts,
    /// by ledger key, then by node id.
    /// - Parameters:
    ///   - dataDirectories: Each node's data directory, by node id. The nodes must have exited.
    ///   - copies: Where the journals are copied before they are opened.
    /// - Throws: ``JournalError`` when a journal cannot be read, or a file error when it cannot be copied.
    public static func ledgers(dataDirectories: [String: String], copies: String) async throws
        -> [String: [String: [String: Int]]]
    {
        var found: [String: [String: [String: Int]]] = [:]
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
                for actor in try await journal.heldActors() where actor.typeName == Ledger.typeName {
                    found[actor.key, default: [:]][node] = appliedKeys(try await journal.entries(for: actor))
                }
            } catch {
                await journal.close()
                throw error
            }
            await journal.close()
        }
        return found
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
