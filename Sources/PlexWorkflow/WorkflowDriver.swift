/// What an executor needs from its instance: the journaled history, durable writes, and word of changes.
/// ``InstanceDriver`` is the durable actor's; tests use one over a ``WorkflowRecord`` in memory.
protocol WorkflowDriver: Sendable {
    /// The instance's id.
    var instanceID: String { get }
    /// Records new or updated steps durably, in order; returns them as the history holds them.
    func record(_ steps: [WorkflowStep], now: Int64) async throws -> [WorkflowStep]
    /// Takes an event into wait `position` (see ``WorkflowRecord/takeEvent(position:name:deadlineReached:now:)``).
    func takeEvent(position: Int, name: String, deadlineReached: Bool, now: Int64) async throws -> WorkflowStep?
    /// Records the last steps and how the instance ended.
    func finish(_ ending: WorkflowRecord.Ending, steps: [WorkflowStep], now: Int64) async throws
    /// Whether cancellation was requested.
    var cancelRequested: Bool { get }
    /// Notified when an event arrives or cancellation is requested.
    var changes: Notifier { get }
}
