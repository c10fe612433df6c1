import Foundation
import PlexSpaces

/// How `plex workflow` prints instances.
enum WorkflowView {
    static func time(_ milliseconds: Int64?) -> String {
        guard let milliseconds else { return "-" }
        return Date(timeIntervalSince1970: Double(milliseconds) / 1000).formatted(
            .iso8601.year().month().day().time(includingFractionalSeconds: true))
    }

    static func table(_ description: WorkflowDescription) -> String {
        var rows: [(String, String)] = [
            ("id", description.id), ("type", description.type.isEmpty ? "-" : description.type),
            ("status", description.status.rawValue), ("steps", "\(description.stepCount)"),
            ("started", time(description.status == .pending ? nil : description.startedAt)),
        ]
        if let step = description.currentStep { rows.append(("step", step)) }
        if let due = description.nextDueAt { rows.append(("next due", time(due))) }
        if let closed = description.closedAt { rows.append(("finished", time(closed))) }
        if let output = description.outputJSON { rows.append(("result", String(decoding: output, as: UTF8.self))) }
        if let failure = description.failure { rows.append(("error", "\(failure.typeName): \(failure.message)")) }
        return rows.map { $0.0.padding(toLength: 10, withPad: " ", startingAt: 0) + $0.1 }.joined(separator: "\n")
    }

    static func outcome(_ step: WorkflowStep) -> String {
        switch step.outcome {
        case .value(let bytes)?: return "ok (\(bytes.count) B)"
        case .failure(let failure)?: return "failed: \(failure.message)"
        case .timedOut?: return "timed out"
        case nil:
            if let failure = step.lastFailure { return "retrying (\(failure.message))" }
            return "pending"
        }
    }

    static func historyTable(_ description: WorkflowDescription) -> String {
        let header = ["#", "kind", "name", "attempts", "started", "due", "completed", "outcome"]
        let rows = (description.history ?? []).map { step in
            [
                "\(step.position)", step.kind.rawValue, step.target.map { "\(step.name) \($0)" } ?? step.name,
                "\(step.attempts)", time(step.startedAt), time(step.dueAt), time(step.completedAt), outcome(step),
            ]
        }
        return grid([header] + rows)
    }

    static func listTable(_ summaries: [WorkflowSummary]) -> String {
        let header = ["id", "type", "status", "started", "finished"]
        return grid(
            [header]
                + summaries.map { [$0.id, $0.type, $0.status.rawValue, time($0.startedAt), time($0.closedAt)] })
    }

    static func listJSON(_ summaries: [WorkflowSummary]) -> String {
        let rows = summaries.map { summary -> [String: Any] in
            var row: [String: Any] = [
                "id": summary.id, "type": summary.type, "status": summary.status.rawValue,
                "startedAt": summary.startedAt,
            ]
            row["closedAt"] = summary.closedAt
            return row
        }
        guard let data = try? JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys]) else { return "[]" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Rows as columns padded to their widest cell.
    static func grid(_ all: [[String]]) -> String {
        guard let header = all.first else { return "" }
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.indices.map { row[$0].padding(toLength: widths[$0] + 2, withPad: " ", startingAt: 0) }.joined()
        }.joined(separator: "\n")
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

    static func json(_ description: WorkflowDescription) -> String {
        render(object(description))
    }

    static func historyJSON(_ description: WorkflowDescription) -> String {
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
        return render(object)
    }

    static func render(_ object: [String: Any]) -> String {
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]) else {
            return "{}"
        }
        return String(decoding: data, as: UTF8.self)
    }
}
