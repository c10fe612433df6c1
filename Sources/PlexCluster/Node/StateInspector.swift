public import PlexCore
public import PlexJournal

/// Rebuilds a durable actor's state from a journal, at any retained sequence (time travel), without a node.
public enum StateInspector {
    /// The state of `A`/`key` after the entry with sequence `sequence` (or the latest, if `nil`).
    ///
    /// Replays journaled messages with their recorded side effects, exactly as recovery does; nothing runs
    /// that would reach outside the actor (calls to other actors fail).
    ///
    /// - Throws: ``CallError`` `storageFailure` when the journal cannot be read or replayed, or
    ///   `invalidRequest` when `A` is not durable.
    public static func state<A: VirtualActor>(
        of type: A.Type, key: String, at sequence: UInt64? = nil, in journal: Journal,
        make: @escaping @Sendable () -> A = { A() }
    ) async throws -> (state: A.State, sequence: UInt64) {
        guard case .durable = A.durability else {
            throw CallError(.invalidRequest, "\(A.typeName) is not durable: it has no journal")
        }
        let id = ActorID(typeName: A.typeName, key: key)
        let router = OfflineRouter()
        let activation = Activation<A>(
            id: id, behaviour: make(), now: 0, journal: journal, retentionMilliseconds: 0, turns: TurnTasks(),
            makeContext: { callID, idempotencyKey, replaying in
                ActorContext(
                    id: id, nodeID: NodeID(unchecked: "inspector"), callID: callID, idempotencyKey: idempotencyKey,
                    isReplaying: replaying, router: router)
            })
        try await activation.recover(upTo: sequence)
        return (activation.state, activation.sequence)
    }
}

/// The router of an offline replay: there is no cluster to call.
struct OfflineRouter: ActorCallRouter {
    func ask<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request, options: CallOptions)
        async throws -> A.Response
    {
        throw CallError(.nodeUnavailable, "no cluster during an offline replay")
    }

    func tell<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request) async throws {
        throw CallError(.nodeUnavailable, "no cluster during an offline replay")
    }
}
