internal import PlexCluster
internal import PlexCore
public import PlexJournal

/// Reads workflow instances from a journal without a node (a stopped node's, or a copy): the offline side of
/// ``WorkflowClient/describe(id:history:json:timeout:)``.
public enum WorkflowInspector {
    /// The durable state of instance `id` after the journaled message with sequence `sequence` (the latest if
    /// `nil`), and that sequence. Rebuilt as recovery does: from the latest checkpoint at or before
    /// `sequence`, then the messages after it (with `keep_history`, an earlier sequence replays from the
    /// first message).
    /// - Throws: ``PlexCore/CallError`` `storageFailure` when the journal cannot be read or replayed.
    public static func record(of id: String, at sequence: UInt64? = nil, in journal: Journal) async throws
        -> (record: WorkflowRecord, sequence: UInt64)
    {
        let found = try await StateInspector.state(
            of: WorkflowInstance.self, key: id, at: sequence, in: journal, make: { WorkflowInstance() })
        return (found.state, found.sequence)
    }

    /// The sequence of instance `id`'s latest checkpoint, if it has one.
    public static func checkpointSequence(of id: String, in journal: Journal) async throws -> UInt64? {
        try await journal.latestCheckpoint(for: ActorID(typeName: WorkflowInstance.typeName, key: id))?.sequence
    }
}
