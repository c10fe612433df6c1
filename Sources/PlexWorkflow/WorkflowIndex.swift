internal import PlexCore
internal import Synchronization

/// One instance as the index lists it.
public struct WorkflowSummary: Sendable, Hashable, Codable {
    /// The instance id.
    public var id: String
    /// The workflow type's name.
    public var type: String
    /// Where it is in its life (as of its last word to the index).
    public var status: WorkflowStatus
    /// When it started and finished (milliseconds since 1970).
    public var startedAt: Int64
    public var closedAt: Int64?

    /// Creates a summary.
    public init(id: String, type: String, status: WorkflowStatus, startedAt: Int64, closedAt: Int64? = nil) {
        self.id = id
        self.type = type
        self.status = status
        self.startedAt = startedAt
        self.closedAt = closedAt
    }
}

/// A shard of the cluster's list of workflow instances: a durable actor (so the list is kept in the journal
/// of the shard's owner, handed off and recovered like any durable state) holding a summary per instance whose
/// id hashes to it.
///
/// Instances tell their shard when they start, when they close, on each activation (so word lost in a crash
/// is repaired the next time the instance is activated) and when they are purged, in batches per node
/// (``IndexBatcher``). The list is
/// therefore eventually consistent: an instance's own status (``WorkflowClient/describe(id:history:json:timeout:)``)
/// is the truth; `plex workflow list` gathers every shard.
struct WorkflowIndex: VirtualActor {
    static let typeName = "plex.workflow.index"
    static let durability = Durability.durable(checkpointEvery: 256)
    /// The number of shards.
    static let shards = 16

    struct State: ActorState, Hashable {
        var instances: [String: WorkflowSummary] = [:]
    }

    /// A change to the list.
    enum Change: Codable, Sendable, Hashable {
        case update(WorkflowSummary)
        case remove(id: String)

        /// The instance it is about.
        var id: String {
            switch self {
            case .update(let summary): summary.id
            case .remove(let id): id
            }
        }

        /// One change that does what `self` then `next` (about the same instance) do to any shard state, or
        /// `nil` when no single change does: a batch keeps one change per instance where it can (an instance
        /// that starts and closes within a batch sends only its close).
        func then(_ next: Change) -> Change? {
            guard case .update(let summary) = next, !summary.status.isClosed else {
                return next  // a removal or a closed summary is applied whatever the shard holds
            }
            // A running summary is passed over where the shard holds a closed one of the same run (see
            // `State.apply`), so what `self` leaves behind matters.
            guard case .update(let known) = self, known.startedAt == summary.startedAt else { return nil }
            return known.status.isClosed ? self : next
        }
    }

    enum Request: Codable, Sendable {
        /// Changes gathered on one node, in the order they were made, merged where one does what two would
        /// (``Change/then(_:)``).
        case apply([Change])
        case list(type: String?, status: WorkflowStatus?, limit: Int)
    }

    enum Response: Codable, Sendable {
        case done
        case summaries([WorkflowSummary])
    }

    static func isReadOnly(_ request: Request) -> Bool {
        if case .list = request { return true }
        return false
    }

    /// The key of the shard that lists instance `id`.
    static func shard(of id: String) -> String {
        "shard-\(StableHash.hash(id) % UInt64(shards))"
    }

    /// Every shard's key.
    static var allShards: [String] { (0..<shards).map { "shard-\($0)" } }

    func handle(_ request: Request, state: inout State, context: ActorContext) async throws -> Response {
        switch request {
        case .apply(let changes):
            for change in changes { state.apply(change) }
            return .done
        case .list(let type, let status, let limit):
            let matching = state.instances.values.filter { summary in
                (type == nil || summary.type == type) && (status == nil || summary.status == status)
            }
            return .summaries(Array(matching.sorted(by: WorkflowSummary.newestFirst).prefix(limit)))
        }
    }
}

extension WorkflowIndex.State {
    mutating func apply(_ change: WorkflowIndex.Change) {
        switch change {
        case .update(let summary):
            // A closed instance's summary is final: a late "running" from a stale activation does not undo it.
            if let known = instances[summary.id], known.status.isClosed, !summary.status.isClosed,
                known.startedAt == summary.startedAt
            {
                return
            }
            instances[summary.id] = summary
        case .remove(let id):
            instances[id] = nil
        }
    }
}

/// Gathers a node's index changes and sends each shard its changes together, at most every `interval`: one
/// journaled message per shard and interval instead of one per change (an instance changes its entry when it
/// starts and when it closes), merging an instance's changes where one does what two would
/// (``WorkflowIndex/Change/then(_:)``). A batch goes through the reference of its latest change, so it leaves
/// once that change's message is durable.
final class IndexBatcher: Sendable {
    private struct Pending {
        var shard: ActorRef<WorkflowIndex>
        var changes: [WorkflowIndex.Change]
        /// Where each instance's change is in `changes`.
        var positions: [String: Int]

        init(shard: ActorRef<WorkflowIndex>, change: WorkflowIndex.Change) {
            self.shard = shard
            self.changes = [change]
            self.positions = [change.id: 0]
        }

        mutating func add(_ change: WorkflowIndex.Change) {
            if let position = positions[change.id], let merged = changes[position].then(change) {
                changes[position] = merged
            } else {
                positions[change.id] = changes.count
                changes.append(change)
            }
        }
    }

    private struct State {
        var pending: [String: Pending] = [:]
        var scheduled = false
    }

    private let state = Mutex(State())
    let interval: Duration

    init(interval: Duration = .milliseconds(10)) {
        self.interval = interval
    }

    /// Queues `change` for the shard `shard` refers to.
    func add(_ change: WorkflowIndex.Change, to shard: ActorRef<WorkflowIndex>) {
        let schedule = state.withLock { state in
            if state.pending[shard.id.key] == nil {
                state.pending[shard.id.key] = Pending(shard: shard, change: change)
            } else {
                state.pending[shard.id.key]!.shard = shard
                state.pending[shard.id.key]!.add(change)
            }
            defer { state.scheduled = true }
            return !state.scheduled
        }
        guard schedule else { return }
        let interval = self.interval
        Task {
            try? await Task.sleep(for: interval)
            await self.flush()
        }
    }

    /// Sends what is queued.
    func flush() async {
        let batches = state.withLock { state in
            defer {
                state.pending = [:]
                state.scheduled = false
            }
            return Array(state.pending.values)
        }
        await withTaskGroup(of: Void.self) { group in
            for batch in batches {
                group.addTask { try? await batch.shard.tell(.apply(batch.changes)) }
            }
        }
    }
}

extension WorkflowSummary {
    /// Newest started first, then by id.
    static func newestFirst(_ a: WorkflowSummary, _ b: WorkflowSummary) -> Bool {
        a.startedAt != b.startedAt ? a.startedAt > b.startedAt : a.id < b.id
    }
}
