internal import FoundationEssentials
internal import Glibc
internal import PlexCore

/// The ring a node last knew, as kept in its data directory (`ring.json`), so the cluster outlives its
/// processes: a node that restarts starts from it instead of from nothing.
///
/// It holds the cluster's id (made once, by the node that founded the cluster) and every member this node
/// knew with its address, incarnation and status. Written atomically (a temporary file, `fsync`, rename,
/// `fsync` of the directory) whenever one of those changes; reachability and activation counts are not kept.
struct StoredRing: Codable, Sendable, Equatable {
    struct Member: Codable, Sendable, Equatable {
        var nodeID: String
        var address: String
        var incarnation: UInt64
        /// `up`, `leaving` or `left`.
        var status: String
    }

    /// The format of this file; a later format is refused rather than misread.
    var version: Int = 1
    /// The id of the cluster this node belongs to (made when the cluster was founded).
    var clusterID: String
    var members: [Member]
}

enum RingStore {
    static let fileName = "ring.json"
    static let currentVersion = 1

    /// The ring kept in `dataDirectory`, or `nil` when there is none (a new data directory).
    /// - Throws: ``NodeError`` `dataDirectory` when the file exists but cannot be read or understood; a node
    ///   never starts as new because its ring file is damaged (that could found a second cluster).
    static func load(dataDirectory: String) throws -> StoredRing? {
        let path = dataDirectory + "/" + fileName
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw NodeError(.dataDirectory, "cannot read \(path)")
        }
        let ring: StoredRing
        do {
            ring = try JSONDecoder().decode(StoredRing.self, from: data)
        } catch {
            throw NodeError(
                .dataDirectory,
                "\(path) is damaged (\(error)); restore it from a copy, or remove the data directory to join as a "
                    + "new node", cause: error)
        }
        guard ring.version <= currentVersion else {
            throw NodeError(.dataDirectory, "\(path) has format \(ring.version), newer than this plex understands")
        }
        guard !ring.clusterID.isEmpty, ring.members.allSatisfy({ NodeID.isValid($0.nodeID) }) else {
            throw NodeError(.dataDirectory, "\(path) names no cluster or an invalid member id")
        }
        return ring
    }

    /// Writes `ring` durably and atomically.
    /// - Throws: ``NodeError`` `dataDirectory`.
    static func save(_ ring: StoredRing, dataDirectory: String) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        let data: Data
        do { data = try encoder.encode(ring) } catch {
            throw NodeError(.dataDirectory, "cannot encode the ring", cause: error)
        }
        try writeDurably(data, to: dataDirectory + "/" + fileName, in: dataDirectory)
    }

    /// The file that marks a data directory whose node was removed from its cluster.
    static let removalFileName = "REMOVED"

    /// Marks the data directory as that of a removed node (best effort: the node is stopping anyway; the
    /// cluster refuses it again if the mark could not be written).
    static func recordRemoval(dataDirectory: String, notice: String) {
        try? writeDurably(
            Data((notice + "\n").utf8), to: dataDirectory + "/" + removalFileName, in: dataDirectory)
    }

    /// What the removal mark says, if the data directory has one.
    static func removalNotice(dataDirectory: String) -> String? {
        guard let data = FileManager.default.contents(atPath: dataDirectory + "/" + removalFileName) else {
            return nil
        }
        return String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// Writes `data` to `path` atomically and durably: a temporary file, `fsync`, rename, `fsync` of the
    /// directory.
    private static func writeDurably(_ data: Data, to path: String, in dataDirectory: String) throws {
        let temporary = path + ".tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw NodeError(.dataDirectory, "cannot write \(temporary): errno \(errno)") }
        var failure: Int32 = 0
        data.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    return
                }
                offset += written
            }
        }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        guard failure == 0 else { throw NodeError(.dataDirectory, "cannot write \(temporary): errno \(failure)") }
        guard rename(temporary, path) == 0 else {
            throw NodeError(.dataDirectory, "cannot rename \(temporary) to \(path): errno \(errno)")
        }
        let directory = open(dataDirectory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if directory >= 0 {
            _ = fsync(directory)
            close(directory)
        }
    }
}
