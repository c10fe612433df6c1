import Foundation
import PlexGateway
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

    static func historyTable(_ description: WorkflowDescription) -> String {
        let header = ["#", "kind", "name", "attempts", "started", "due", "completed", "outcome"]
        let rows = (description.history ?? []).map { step in
            [
                "\(step.position)", step.kind.rawValue, step.target.map { "\(step.name) \($0)" } ?? step.name,
                "\(step.attempts)", time(step.startedAt), time(step.dueAt), time(step.completedAt),
                WorkflowJSON.outcome(step),
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

    /// Rows as columns padded to their widest cell.
    static func grid(_ all: [[String]]) -> String {
        guard let header = all.first else { return "" }
        let widths = header.indices.map { column in all.map { $0[column].count }.max() ?? 0 }
        return all.map { row in
            row.indices.map { row[$0].padding(toLength: widths[$0] + 2, withPad: " ", startingAt: 0) }.joined()
        }.joined(separator: "\n")
    }

}
