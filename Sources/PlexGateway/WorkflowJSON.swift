internal import Foundation
public import PlexWorkflow

/// Workflow instances as JSON: what `plex workflow … --json` prints and the gateway answers.
public enum WorkflowJSON {
    /// An instance: id, type, status, step count, times, current step, result and error.
    public static func description(_ description: WorkflowDescription) -> String {
        String(decoding: JSONOutput.render(object(description)), as: UTF8.self)
    }

    /// An instance with its history: every step with its times, attempts and outcome.
    public static func history(_ description: WorkflowDescription) -> String {
        var object = object(description)
        object["history"] = (description.history ?? []).map { step -> [String: Any] in
            var row: [String: Any] = [
                "position": step.position, "kind": step.kind.rawValue, "name": step.name, "attempts": step.attempts,
                "startedAt": step.startedAt, "outcome": outcome(step),
            ]
            row["dueAt"] = step.dueAt
            row["completedAt"] = step.completedAt
            row["target"] = step.target
            return row
        }
        return String(decoding: JSONOutput.render(object), as: UTF8.self)
    }

    /// Instances as the index lists them.
    public static func list(_ summaries: [WorkflowSummary]) -> String {
        let rows = summaries.map { summary -> [String: Any] in
            var row: [String: Any] = [
                "id": summary.id, "type": summary.type, "status": summary.status.rawValue,
                "startedAt": summary.startedAt,
            ]
            row["closedAt"] = summary.closedAt
            return row
        }
        return String(decoding: JSONOutput.render(rows), as: UTF8.self)
    }

    /// A step's outcome in words: `ok (N B)`, `failed: …`, `timed out`, `retrying (…)` or `pending`.
    public static func outcome(_ step: WorkflowStep) -> String {
        switch step.outcome {
        case .value(let bytes)?: return "ok (\(bytes.count) B)"
        case .failure(let failure)?: return "failed: \(failure.message)"
        case .timedOut?: return "timed out"
        case nil:
            if let failure = step.lastFailure { return "retrying (\(failure.message))" }
            return "pending"
        }
    }

    static func object(_ description: WorkflowDescription) -> [String: Any] {
        var object: [String: Any] = [
            "id": description.id, "type": description.type, "status": description.status.rawValue,
            "steps": description.stepCount, "startedAt": description.startedAt,
        ]
        object["currentStep"] = description.currentStep
        object["nextDueAt"] = description.nextDueAt
        object["closedAt"] = description.closedAt
        object["parent"] = description.parent
        if description.continuedAsNew > 0 { object["continuedAsNew"] = description.continuedAsNew }
        if let output = description.outputJSON {
            object["result"] = try? JSONSerialization.jsonObject(with: Data(output), options: [.fragmentsAllowed])
        }
        if let failure = description.failure {
            object["error"] = ["type": failure.typeName, "message": failure.message, "code": failure.code as Any]
        }
        return object
    }
}
