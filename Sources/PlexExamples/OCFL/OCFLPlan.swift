/// The steps that add a version to an OCFL object, planned from the staged files and the object's current
/// inventory: pure, so a workflow replays it identically.
public struct OCFLPlan: Codable, Sendable, Hashable {
    /// One step: an activity of its own.
    public enum Step: Codable, Sendable, Hashable {
        /// Write the conformance declaration `0=ocfl_object_1.1` (a new object).
        case declare
        /// Create the version's content directory.
        case makeDirectory(path: String)
        /// Copy a source file to a content path.
        case copy(source: String, to: String, size: Int)
        /// Write an inventory and its `.sha512` sidecar at `directory` (`""` for the object root).
        case writeInventory(directory: String)
    }

    /// The inventory after the update.
    public var inventory: OCFLInventory
    public var steps: [Step]

    /// The plan that makes `staged` the next version of the object whose inventory is `current` (`nil`: no
    /// object yet), created at `created`; `nil` when the head version already holds exactly `staged`.
    /// Content already in the object (by digest) is not copied again, nor is a second file with the same
    /// digest.
    public static func make(
        id: String, staged: [OCFLStagedFile], current: OCFLInventory?, created: String, message: String
    ) -> OCFLPlan? {
        let files = Dictionary(staged.map { ($0.path, $0.digest) }, uniquingKeysWith: { first, _ in first })
        if let current, current.headFiles == files { return nil }
        let number = (current?.headNumber ?? 0) + 1
        let version = "v\(number)"
        var inventory =
            current ?? OCFLInventory(id: id, head: version, manifest: [:], versions: [:])
        inventory.head = version
        var state: [String: [String]] = [:]
        var steps: [Step] = current == nil ? [.declare] : []
        var copies: [Step] = []
        for file in staged.sorted(by: { $0.path < $1.path }) {
            state[file.digest, default: []].append(file.path)
            guard inventory.manifest[file.digest] == nil else { continue }
            let contentPath = "\(version)/content/\(file.path)"
            inventory.manifest[file.digest] = [contentPath]
            copies.append(.copy(source: file.path, to: contentPath, size: file.size))
        }
        // The version directory is made afresh (whatever an unfinished earlier attempt left there goes); its
        // content directory only when there is content to copy (an empty one draws a validator's warning).
        steps.append(.makeDirectory(path: copies.isEmpty ? version : "\(version)/content"))
        steps += copies
        inventory.versions[version] = .init(
            created: created, state: state, message: message,
            user: .init(name: "plex", address: "mailto:plex@localhost"))
        // The version's inventory first; the root inventory last: it is what makes the version the head.
        steps.append(.writeInventory(directory: version))
        steps.append(.writeInventory(directory: ""))
        return OCFLPlan(inventory: inventory, steps: steps)
    }
}

extension OCFLPlan.Step {
    /// How a progress line names the step: `copy v1/content/data/file1.txt (19 bytes)`.
    public var summary: String {
        switch self {
        case .declare: "write 0=ocfl_object_1.1"
        case .makeDirectory(let path): "create \(path)"
        case .copy(_, let to, let size): "copy \(to) (\(size) bytes)"
        case .writeInventory(let directory):
            directory.isEmpty
                ? "write inventory.json and inventory.json.sha512" : "write \(directory)/inventory.json and its .sha512"
        }
    }
}
