/// What an executor needs from its instance: the journaled history, durable writes, and word of changes.
/// ``InstanceDriver`` is the durable actor's; tests use one over a ``WorkflowRecord`` in memory.
protocol WorkflowDriver: Sendable {
    /// The instance's id.
    var instanceID: String { get }
    /// Records new or updated steps durably, in order; returns them as the history holds them.
    func record(_ steps: [WorkflowStep], now: Int64) async throws -> [WorkflowStep]
    /// Takes an event into wait `position` (see ``WorkflowRecord/takeEvent(position:name:deadlineReached:now:)``).
    func takeEvent(position: Int, name: String, deadlineReached: Bool, now: Int64) async throws -> WorkflowStep?
    /// Whether an event `name` waits in the instance's inbox (a read: nothing is journaled).
    func hasEvent(_ name: String) async throws -> Bool
    /// Records the last steps and how the instance ended.
    func finish(_ ending: WorkflowRecord.Ending, steps: [WorkflowStep], now: Int64) async throws
    /// Whether cancellation was requested.
    var cancelRequested: Bool { get }
    /// Notified when an event arrives, cancellation is requested or a child workflow closes.
    var changes: Notifier { get }
    /// Starts child instance `id` of workflow type `type` (idempotent: an instance started already is left
    /// as it is).
    func startChild(id: String, type: String, input: [UInt8], now: Int64) async throws
    /// Child instance `id` as its owner sees it.
    func describeChild(id: String) async throws -> WorkflowDescription
    /// Asks child instance `id` to cancel.
    func cancelChild(id: String) async throws
    /// With `true`, the code waits with nothing running (or stopped): the instance may unload (end its
    /// activation) until its wake-up reminder or an event brings it back; with `false`, it is busy again.
    func unload(_ unload: Bool) async
    /// Runs an attempt of pooled activity `context.name` on a worker node (``ActivityPlacement/workerPool``).
    func runOnWorker(input: [UInt8], context: ActivityContext, timeout: Duration) async throws -> [UInt8]
}
