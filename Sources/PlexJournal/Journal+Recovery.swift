public import PlexCore

/// What an activation of a durable actor reads before it runs: where this node stands with the actor, and
/// the state to rebuild it from.
public struct ActorRecovery: Sendable {
    /// Where this node stands with the actor (whether its copy here is the one to use).
    public var holding: ActorHolding
    /// The latest checkpoint, if there is one at or before the target sequence.
    public var checkpoint: Checkpoint?
    /// The entries after ``checkpoint`` (all of them without one), in order.
    public var entries: [JournalEntry]
    /// The latest checkpoint, whether or not it is at or before the target (for explaining a target that
    /// pruning removed).
    public var latestCheckpoint: Checkpoint?
    /// How many transfers from other nodes the actor's shard had stored when this was read. A handoff push
    /// stores a transfer without the actor's turn: an activation whose read came before it finds the count
    /// changed (``Journal/adoptions(of:)``) and reads again.
    public var adoptions: UInt64
}

extension Journal {
    /// Reads, in one job of the actor's writer, what an activation needs: clears the actor's append failure
    /// (as ``clearFailure(of:)``, after every append queued before), then reads its holding, its latest
    /// checkpoint at or before `target` and the entries after that checkpoint.
    ///
    /// One job instead of four: an activation of a new actor (every workflow instance) waited for the writer
    /// thread four times, and each wait is two thread wake-ups.
    /// - Parameter target: The last sequence wanted (time travel); `nil`: all of them. A checkpoint after it
    ///   is not used, and the entries are read from the first.
    public func recovery(of actor: ActorID, upTo target: UInt64? = nil) async throws -> ActorRecovery {
        let shard = writer(for: actor)
        return try await shard.perform(filing: .none) { connection throws(JournalError) in
            shard.forgetFailure(of: actor)
            var holding = try Self.ownership(of: actor, connection)
            let latest = try Self.checkpoint(for: actor, connection)
            let checkpoint = latest.flatMap { $0.sequence <= target ?? .max ? $0 : nil }
            let entries = try Self.entries(
                for: actor, where: "seq > ?2", bindings: [Int64(bitPattern: checkpoint?.sequence ?? 0)],
                unfiled: shard.unfiled.backlogs[actor]?.rows ?? [], keepingHistory: shard.keepsHistory, connection)
            // Without a checkpoint nothing was pruned, so the entries read are all there are.
            holding.hasData = latest != nil || !entries.isEmpty || shard.unfiled.backlogs[actor] != nil
            return ActorRecovery(
                holding: holding, checkpoint: checkpoint, entries: entries, latestCheckpoint: latest,
                adoptions: shard.adoptions)
        }
    }

    /// How many transfers from other nodes the shard holding `actor` has stored so far (a read of a counter,
    /// no journal job).
    public func adoptions(of actor: ActorID) -> UInt64 {
        writer(for: actor).adoptions
    }
}
