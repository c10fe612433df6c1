internal import FoundationEssentials

/// An OCFL 1.1 object's inventory (`inventory.json`): the content files by digest (the manifest) and each
/// version's logical state. <https://ocfl.io/1.1/spec/#inventory>
public struct OCFLInventory: Codable, Sendable, Hashable {
    public var id: String
    public var type = "https://ocfl.io/1.1/spec/#inventory"
    public var digestAlgorithm = "sha512"
    /// The latest version (`v1`, `v2`, …).
    public var head: String
    /// Content paths (relative to the object root) by digest.
    public var manifest: [String: [String]]
    public var versions: [String: Version]
    /// Other digests of content files, by algorithm (kept as found).
    public var fixity: [String: [String: [String]]]?
    /// Where content goes in a version directory (`content` when absent; the only one this example writes).
    public var contentDirectory: String?

    public struct Version: Codable, Sendable, Hashable {
        /// When the version was made (RFC 3339).
        public var created: String
        /// Logical paths by digest.
        public var state: [String: [String]]
        public var message: String?
        public var user: User?
    }

    /// Who made a version.
    public struct User: Codable, Sendable, Hashable {
        public var name: String
        /// A URI (`mailto:…`).
        public var address: String?
    }

    /// The number of the head version (0 for an object with none).
    public var headNumber: Int { Int(head.dropFirst()) ?? 0 }

    /// The head version's logical state as path → digest.
    public var headFiles: [String: String] {
        var files: [String: String] = [:]
        for (digest, paths) in versions[head]?.state ?? [:] {
            for path in paths { files[path] = digest }
        }
        return files
    }

    /// The root inventory of the object at `object`, if it has a readable one.
    public static func read(rootOf object: String) -> OCFLInventory? {
        FileManager.default.contents(atPath: "\(object)/inventory.json").flatMap {
            try? JSONDecoder().decode(OCFLInventory.self, from: $0)
        }
    }

    /// The inventory's bytes as written: pretty-printed JSON with sorted keys (the same inventory gives the same
    /// bytes, so its sidecar digest is stable).
    public func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }
}

/// One file of the directory being deposited.
public struct OCFLStagedFile: Codable, Sendable, Hashable {
    /// Its logical path (relative to the source directory, `/`-separated).
    public var path: String
    /// Its SHA-512, lower-case hex.
    public var digest: String
    public var size: Int

    public init(path: String, digest: String, size: Int) {
        self.path = path
        self.digest = digest
        self.size = size
    }
}
