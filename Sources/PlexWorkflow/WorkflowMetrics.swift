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
    private let counters = Mutex<[String: Counter]>([:])

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let key = ([label] + dimensions.map { "\($0.0)=\($0.1)" }).joined(separator: "|")
        return counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: label, dimensions: dimensions)
            counters[key] = counter
            return counter
        }
    }

    func started(_ type: String) { counter("plex_workflows_started_total", [("type", type)]).increment() }

    func closed(_ type: String, status: WorkflowStatus) {
        counter("plex_workflows_closed_total", [("type", type), ("status", status.rawValue)]).increment()
    }

    func retried(_ type: String) { counter("plex_workflow_activity_retries_total", [("type", type)]).increment() }
}
