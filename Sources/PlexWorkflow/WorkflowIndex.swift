internal import PlexCore

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
/// Instances tell their shard when they start, when they close, on each activation while they run (so word
/// lost in a crash is repaired the next time the instance wakes) and when they are purged. The list is
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

    enum Request: Codable, Sendable {
        case update(WorkflowSummary)
        case remove(id: String)
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
        case .update(let summary):
            // A closed instance's summary is final: a late "running" from a stale activation does not undo it.
            if let known = state.instances[summary.id], known.status.isClosed, !summary.status.isClosed,
                known.startedAt == summary.startedAt
            {
                return .done
            }
            state.instances[summary.id] = summary
            return .done
        case .remove(let id):
            state.instances[id] = nil
            return .done
        case .list(let type, let status, let limit):
            let matching = state.instances.values.filter { summary in
                (type == nil || summary.type == type) && (status == nil || summary.status == status)
            }
            return .summaries(Array(matching.sorted(by: WorkflowSummary.newestFirst).prefix(limit)))
        }
    }
}

extension WorkflowSummary {
    /// Newest started first, then by id.
    static func newestFirst(_ a: WorkflowSummary, _ b: WorkflowSummary) -> Bool {
        a.startedAt != b.startedAt ? a.startedAt > b.startedAt : a.id < b.id
    }
}
