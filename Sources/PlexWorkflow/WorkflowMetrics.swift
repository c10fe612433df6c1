internal import CoreMetrics
internal import Synchronization

/// The swift-metrics counters of a ``WorkflowEngine``, labelled by workflow type (and status): bounded by the
/// registered types, never an instance id. Counted where the instance's own actor changes its record, live
/// only (a replay counts nothing again).
///
/// | metric | what |
/// |---|---|
/// | `plex_workflows_started_total{type}` | instances started (a repeated start of one instance counts once) |
/// | `plex_workflows_closed_total{type,status}` | instances closed: `completed`, `failed`, `cancelled`, `terminated` |
/// | `plex_workflow_activity_retries_total{type}` | failed activity attempts that will be tried again |
final class WorkflowMetrics: Sendable {
    private enum Metric: Hashable {
        case started, closed(WorkflowStatus), retried
    }

    private struct Key: Hashable {
        let metric: Metric
        let type: String
    }

    /// Made once per type and status (an instance's start and close look theirs up, allocating nothing).
    private let counters = Mutex<[Key: Counter]>([:])

    private func counter(_ metric: Metric, _ type: String) -> Counter {
        let key = Key(metric: metric, type: type)
        return counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter =
                switch metric {
                case .started: Counter(label: "plex_workflows_started_total", dimensions: [("type", type)])
                case .closed(let status):
                    Counter(
                        label: "plex_workflows_closed_total", dimensions: [("type", type), ("status", status.rawValue)])
                case .retried: Counter(label: "plex_workflow_activity_retries_total", dimensions: [("type", type)])
                }
            counters[key] = counter
            return counter
        }
    }

    func started(_ type: String) { counter(.started, type).increment() }

    func closed(_ type: String, status: WorkflowStatus) { counter(.closed(status), type).increment() }

    func retried(_ type: String) { counter(.retried, type).increment() }
}
