internal import Crypto
internal import FoundationEssentials
public import PlexSpaces

/// Scenario 5, an OCFL object update (the Durable Task Framework's long-running file job): stage a directory
/// (SHA-512 of every file), plan the next version of an OCFL 1.1 object with a timestamp from the workflow
/// clock, and run one activity per plan step: the conformance declaration, the version's content directory,
/// each new file, the version's inventory and sidecar, then the root inventory and sidecar (which makes the
/// version the head). Unchanged content is not copied again (deduplicated by digest).
///
/// A crash mid-update resumes where it stopped: staging, reading the object and every finished step are
/// journaled, and each step is idempotent. `plex ocfl update SOURCE OBJECT` runs it in its own process.
public struct OCFLUpdateWorkflow: Workflow {
    public static let typeName = "ocfl-update"

    public struct Input: Codable, Sendable {
        /// The directory whose content becomes the next version.
        public var source: String
        /// The OCFL object's root directory.
        public var object: String
        /// The object's identifier (in its inventory).
        public var id: String
        public var message: String
        /// Milliseconds each step waits before it starts (to watch an update, or interrupt it). Default: none.
        public var stepDelayMilliseconds: Int?
        public init(
            source: String, object: String, id: String, message: String = "deposited by plex",
            stepDelayMilliseconds: Int? = nil
        ) {
            self.source = source
            self.object = object
            self.id = id
            self.message = message
            self.stepDelayMilliseconds = stepDelayMilliseconds
        }
    }

    /// The version the object is at after the update, and how many steps it took (0: nothing needed doing).
    public struct Output: Codable, Sendable, Hashable {
        public var version: String
        public var steps: Int
    }

    /// At most 5 attempts: 1 s, 2 s, 4 s, … capped at a minute.
    public static let retry = RetryPolicy(
        initialInterval: .seconds(1), backoffCoefficient: 2, maximumInterval: .seconds(60), maximumAttempts: 5)

    public init() {}

    public func run(_ input: Input, context: WorkflowContext) async throws -> Output {
        let staged = try await context.activity(OCFLStage.self, input.source, retry: Self.retry)
        let current = try await context.activity(OCFLReadInventory.self, input.object, retry: Self.retry)
        let created = try await context.now().formatted(.iso8601)
        guard
            let plan = OCFLPlan.make(
                id: input.id, staged: staged, current: current.inventory, created: created, message: input.message)
        else { return Output(version: current.inventory?.head ?? "v0", steps: 0) }
        for (index, step) in plan.steps.enumerated() {
            let work = OCFLApplyStep.Input(
                step: step, index: index + 1, total: plan.steps.count, source: input.source, object: input.object,
                inventory: plan.inventory, delayMilliseconds: input.stepDelayMilliseconds)
            _ = try await context.activity(OCFLApplyStep.self, work, retry: Self.retry)
        }
        return Output(version: plan.inventory.head, steps: plan.steps.count)
    }
}

/// Lists a directory's files with their SHA-512 digests and sizes, by logical path.
public struct OCFLStage: Activity {
    public static let name = "ocfl-stage"
    public init() {}

    public func run(_ source: String, context: ActivityContext) async throws -> [OCFLStagedFile] {
        guard let paths = FileManager.default.subpaths(atPath: source) else {
            throw WorkflowError.nonRetryable("cannot read the source directory \(source)")
        }
        var files: [OCFLStagedFile] = []
        for path in paths.sorted() {
            let attributes = try? FileManager.default.attributesOfItem(atPath: "\(source)/\(path)")
            let type = attributes?[.type] as? FileAttributeType
            if type == .typeDirectory { continue }
            guard type == .typeRegular else {
                throw WorkflowError.nonRetryable(
                    "\(source)/\(path) is not a regular file (a symbolic link, say): OCFL content is files; "
                        + "replace it with what it points to, or remove it")
            }
            let (digest, size) = try OCFLFiles.sha512(of: "\(source)/\(path)")
            files.append(OCFLStagedFile(path: path, digest: digest, size: size))
        }
        return files
    }
}

/// Reads the object's root inventory (none for a new object), checking it against its sidecar.
public struct OCFLReadInventory: Activity {
    public static let name = "ocfl-read-inventory"
    public init() {}

    public struct Output: Codable, Sendable {
        public var inventory: OCFLInventory?
    }

    public func run(_ object: String, context: ActivityContext) async throws -> Output {
        let path = "\(object)/inventory.json"
        guard FileManager.default.fileExists(atPath: path) else {
            // A new object: the directory is missing, empty, or holds what an unfinished first update left.
            let entries = Set((try? FileManager.default.contentsOfDirectory(atPath: object)) ?? [])
            guard entries.isSubset(of: ["0=ocfl_object_1.1", "v1"]) else {
                throw WorkflowError.nonRetryable(
                    "\(object) is not an OCFL object (no inventory.json) and not empty: refusing to write into it")
            }
            return Output(inventory: nil)
        }
        let (digest, _) = try OCFLFiles.sha512(of: path)
        let sidecar = (try? String(contentsOfFile: path + ".sha512", encoding: .utf8)) ?? ""
        guard sidecar.split(whereSeparator: \.isWhitespace).first.map(String.init) == digest else {
            throw WorkflowError.nonRetryable("\(path) does not match its sidecar inventory.json.sha512")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ActorFailure(code: "io", message: "cannot read \(path)")
        }
        let inventory: OCFLInventory
        do {
            inventory = try JSONDecoder().decode(OCFLInventory.self, from: data)
        } catch {
            throw WorkflowError.nonRetryable("\(path) is not an OCFL inventory: \(error)")
        }
        guard inventory.digestAlgorithm == "sha512", (inventory.contentDirectory ?? "content") == "content",
            inventory.head == "v\(inventory.headNumber)"
        else {
            throw WorkflowError.nonRetryable(
                "\(object) uses \(inventory.digestAlgorithm) digests, content directory "
                    + "'\(inventory.contentDirectory ?? "content")' and head \(inventory.head): this example updates "
                    + "only sha512 objects with the default content directory and unpadded version numbers")
        }
        return Output(inventory: inventory)
    }
}

/// Runs one step of an ``OCFLPlan`` (idempotently: a step repeated after a crash leaves the same result) and
/// reports it as a progress line: `[3/10] copy v1/content/data/file1.txt (19 bytes)`.
public struct OCFLApplyStep: Activity {
    public static let name = "ocfl-step"

    public struct Input: Codable, Sendable {
        public var step: OCFLPlan.Step
        public var index: Int
        public var total: Int
        public var source: String
        public var object: String
        /// The inventory after the update (what an inventory step writes).
        public var inventory: OCFLInventory
        /// Milliseconds to wait before the step.
        public var delayMilliseconds: Int?
    }

    let progress: @Sendable (String) -> Void
    let delay: Duration

    /// Reports each finished step to `progress`; waits `delay` before each (to watch an update, or interrupt it).
    public init(delay: Duration = .zero, progress: @escaping @Sendable (String) -> Void = { _ in }) {
        self.delay = delay
        self.progress = progress
    }

    public func run(_ input: Input, context: ActivityContext) async throws -> Bool {
        let delay = max(self.delay, .milliseconds(input.delayMilliseconds ?? 0))
        if delay > .zero { try await Task.sleep(for: delay) }
        let object = input.object
        switch input.step {
        case .declare:
            try FileManager.default.createDirectory(atPath: object, withIntermediateDirectories: true)
            try DurableFiles.write(Array("ocfl_object_1.1\n".utf8), to: "\(object)/0=ocfl_object_1.1")
        case .makeDirectory(let path):
            // The version is not the head yet (the root inventory is written last), so anything in its directory
            // is an unfinished attempt's: start from an empty one.
            let version = "\(object)/\(path.split(separator: "/").first ?? "")"
            try? FileManager.default.removeItem(atPath: version)
            try FileManager.default.createDirectory(atPath: "\(object)/\(path)", withIntermediateDirectories: true)
        case .copy(let source, let to, _):
            let bytes = FileManager.default.contents(atPath: "\(input.source)/\(source)").map(Array.init)
            guard let bytes else {
                throw WorkflowError.nonRetryable(
                    "\(input.source)/\(source) changed since it was staged (it is gone); run the update again")
            }
            let expected = input.inventory.manifest.first { $0.value.contains(to) }?.key
            guard DurableFiles.hex(SHA512.hash(data: bytes)) == expected else {
                throw WorkflowError.nonRetryable(
                    "\(input.source)/\(source) changed since it was staged; run the update again")
            }
            let target = "\(object)/\(to)"
            try FileManager.default.createDirectory(
                atPath: String(target[..<(target.lastIndex(of: "/") ?? target.endIndex)]),
                withIntermediateDirectories: true)
            try DurableFiles.write(bytes, to: target)
        case .writeInventory(let directory):
            let base = directory.isEmpty ? object : "\(object)/\(directory)"
            let bytes = try input.inventory.encoded()
            try DurableFiles.write(bytes, to: "\(base)/inventory.json")
            let sidecar = "\(DurableFiles.hex(SHA512.hash(data: bytes))) inventory.json\n"
            try DurableFiles.write(Array(sidecar.utf8), to: "\(base)/inventory.json.sha512")
        }
        progress("[\(input.index)/\(input.total)] \(input.step.summary)")
        return true
    }
}

/// File digests.
enum OCFLFiles {
    /// The SHA-512 (lower-case hex) and size of the file at `path`.
    static func sha512(of path: String) throws -> (String, Int) {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ActorFailure(code: "io", message: "cannot read \(path)")
        }
        return (DurableFiles.hex(SHA512.hash(data: data)), data.count)
    }
}
