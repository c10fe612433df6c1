internal import FoundationEssentials
internal import PlexCore

/// Keeps a node's id and incarnation in its data directory.
///
/// `node-id` holds the id (written once); `incarnation` holds the last incarnation, bumped and written
/// (atomically, by rename) on every start.
enum NodeIdentityStore {
    /// Locks the data directory, loads (or creates) the node id and bumps the incarnation.
    static func load(dataDirectory: String, configured: NodeID?) throws -> (NodeID, Incarnation, DataDirectoryLock) {
        let fm = FileManager.default
        do {
            try fm.createDirectory(atPath: dataDirectory, withIntermediateDirectories: true)
        } catch {
            throw NodeError(.dataDirectory, "cannot create data directory \(dataDirectory)", cause: error)
        }
        let lock = try DataDirectoryLock(directory: dataDirectory)
        let idPath = dataDirectory + "/node-id"
        let incarnationPath = dataDirectory + "/incarnation"
        let nodeID: NodeID
        if let data = fm.contents(atPath: idPath) {
            let stored = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            let storedID = try NodeID(stored)
            if let configured, configured != storedID {
                throw NodeError(
                    .invalidConfiguration,
                    "node_id: '\(configured)' does not match '\(storedID)' stored in \(idPath)")
            }
            nodeID = storedID
        } else {
            nodeID = try configured ?? NodeID("node-\(UInt32.random(in: 0...UInt32.max))")
            try write(nodeID.rawValue + "\n", to: idPath)
        }
        var incarnation: Incarnation = 0
        if let data = fm.contents(atPath: incarnationPath) {
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let value = Incarnation(text) else {
                throw NodeError(.dataDirectory, "\(incarnationPath) does not hold a number: '\(text)'")
            }
            incarnation = value
        }
        incarnation += 1
        try write("\(incarnation)\n", to: incarnationPath)
        return (nodeID, incarnation, lock)
    }

    private static func write(_ text: String, to path: String) throws {
        do {
            try Data(text.utf8).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw NodeError(.dataDirectory, "cannot write \(path)", cause: error)
        }
    }
}
