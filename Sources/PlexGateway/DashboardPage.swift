internal import FoundationEssentials
internal import PlexCluster
internal import PlexCore
internal import PlexWorkflow

/// The operator's dashboard, rendered on the server as plain HTML and CSS (no script, no build step); it
/// reloads itself every 5 seconds.
enum DashboardPage {
    /// What the overview shows.
    struct Overview {
        var status: ClusterStatus
        /// This node's activations by type.
        var activationsByType: [String: Int]
        var slowest: [RecentCall]
        var failed: [RecentCall]
        /// The instances on every node (newest first), or why they could not be listed.
        var workflows: Result<[WorkflowSummary], any Error>
        /// Now, in milliseconds since 1970.
        var now: Int64
    }

    /// `GET /dashboard`.
    static func overview(_ page: Overview) -> String {
        let status = page.status
        var html = head(title: "\(status.clusterName) — PlexSpaces", refresh: true)
        html += "<h1>Cluster <code>\(escape(status.clusterName))</code></h1>\n"
        html +=
            "<p class=\"sub\">as seen by <b>\(escape(status.answeredBy))</b> · \(escape(status.membership)) · "
            + "\(status.members.count) member(s)</p>\n"

        html += "<section><h2>Members</h2>\n<table id=\"members\"><tr><th>node</th><th>state</th><th>address</th>"
        html += "<th>incarnation</th><th class=\"n\">activations</th></tr>\n"
        for member in status.members.sorted(by: { $0.nodeID < $1.nodeID }) {
            html +=
                "<tr class=\"member\" data-node=\"\(escape(member.nodeID))\" data-state=\"\(escape(member.state))\">"
            html += "<td><b>\(escape(member.nodeID))</b></td>"
            html += "<td><span class=\"badge \(stateClass(member.state))\">\(escape(member.state))</span></td>"
            html += "<td><code>\(escape(member.address))</code></td><td>\(member.incarnation)</td>"
            html +=
                "<td class=\"n\">\(member.activations)\(bar(Int(member.activations), of: maxActivations(status)))</td>"
            html += "</tr>\n"
        }
        html += "</table></section>\n"

        html += "<section><h2>Activations on \(escape(status.answeredBy)) by type</h2>\n"
        if page.activationsByType.isEmpty {
            html += "<p class=\"empty\">none</p>"
        } else {
            let top = page.activationsByType.values.max() ?? 1
            html += "<table id=\"types\"><tr><th>actor type</th><th class=\"n\">activations</th></tr>\n"
            for (type, count) in page.activationsByType.sorted(by: { ($1.value, $0.key) < ($0.value, $1.key) }) {
                html +=
                    "<tr><td><code>\(escape(type))</code></td><td class=\"n\">\(count)\(bar(count, of: top))</td></tr>\n"
            }
            html += "</table>"
        }
        html += "</section>\n"

        html += "<section><h2>Slowest calls on \(escape(status.answeredBy)) (last minute)</h2>\n"
        html += calls(page.slowest, id: "slowest", now: page.now)
        html += "</section>\n<section><h2>Failed calls on \(escape(status.answeredBy)) (latest)</h2>\n"
        html += calls(page.failed, id: "failed", now: page.now)
        html += "</section>\n"

        html += "<section><h2>Workflows</h2>\n"
        switch page.workflows {
        case .failure(let error):
            html += "<p class=\"error\">cannot list the workflows: \(escape("\(error)"))</p>"
        case .success(let workflows):
            html += "<p id=\"workflow-counts\">"
            html += WorkflowStatus.allCases.filter { $0 != .pending }.map { status in
                let count = workflows.filter { $0.status == status }.count
                let css = count == 0 ? "neutral" : stateClass(status.rawValue)
                return "<span class=\"badge \(css)\">\(status.rawValue) \(count)</span>"
            }.joined(separator: " ")
            html += "</p>\n"
            if workflows.count >= 1_000 { html += "<p class=\"sub\">counts of the newest 1,000 instances</p>" }
            if workflows.isEmpty {
                html += "<p class=\"empty\">none</p>"
            } else {
                html += "<table id=\"workflows\"><tr><th>instance</th><th>type</th><th>status</th><th>started</th>"
                html += "<th>closed</th></tr>\n"
                for workflow in workflows.prefix(25) {
                    let link = "/dashboard/workflows/\(percentEncoded(workflow.id))"
                    html += "<tr><td><a href=\"\(link)\">\(escape(workflow.id))</a></td>"
                    html += "<td><code>\(escape(workflow.type))</code></td>"
                    html += "<td><span class=\"badge \(stateClass(workflow.status.rawValue))\">"
                    html += "\(workflow.status.rawValue)</span></td>"
                    html += "<td>\(ago(workflow.startedAt, now: page.now))</td>"
                    html += "<td>\(workflow.closedAt.map { ago($0, now: page.now) } ?? "—")</td></tr>\n"
                }
                html += "</table>"
                if workflows.count > 25 { html += "<p class=\"sub\">newest 25 of \(workflows.count)</p>" }
            }
        }
        html += "</section>\n"
        return html + foot()
    }

    /// `GET /dashboard/workflows/{id}`: the instance's steps on a time axis.
    static func workflow(_ description: WorkflowDescription, now: Int64) -> String {
        var html = head(title: "\(description.id) — PlexSpaces", refresh: description.status == .running)
        html += "<p><a href=\"/dashboard\">← cluster</a></p>\n"
        html += "<h1>Workflow <code>\(escape(description.id))</code></h1>\n"
        html += "<p class=\"sub\"><code>\(escape(description.type))</code> · "
        html += "<span class=\"badge \(stateClass(description.status.rawValue))\">\(description.status.rawValue)</span>"
        html += " · started \(ago(description.startedAt, now: now))"
        if let closed = description.closedAt { html += " · took \(milliseconds(closed - description.startedAt))" }
        if let step = description.currentStep { html += " · now at \(escape(step))" }
        html += "</p>\n"
        if let failure = description.failure {
            html += "<p class=\"error\">\(escape(failure.typeName)): \(escape(failure.message))</p>\n"
        }
        let steps = description.history ?? []
        let start = description.startedAt
        let end = max(description.closedAt ?? now, steps.map { $0.completedAt ?? now }.max() ?? now, start + 1)
        html += "<section><h2>Timeline</h2>\n<div id=\"timeline\">\n"
        html += "<div class=\"axis\"><span>0</span><span>\(milliseconds(end - start))</span></div>\n"
        if steps.isEmpty { html += "<p class=\"empty\">no steps yet</p>" }
        for step in steps {
            let from = step.startedAt - start
            let to = (step.completedAt ?? now) - start
            let left = Double(from) / Double(end - start) * 100
            let width = max(Double(to - from) / Double(end - start) * 100, 0.4)
            let outcome = outcomeText(step)
            html += "<div class=\"step\" data-kind=\"\(step.kind.rawValue)\">"
            html += "<div class=\"label\">#\(step.position) \(step.kind.rawValue) <b>\(escape(step.name))</b></div>"
            html += "<div class=\"track\"><div class=\"span \(outcome.css)\" style=\"left:\(format(left))%;"
            html += "width:\(format(min(width, 100 - left)))%\" title=\"\(escape(outcome.text))\"></div></div>"
            html += "<div class=\"meta\">\(milliseconds(to - from))"
            if step.attempts > 1 { html += " · \(step.attempts) attempts" }
            html += " · \(escape(outcome.text))</div></div>\n"
        }
        html += "</div></section>\n"
        return html + foot()
    }

    /// `GET /dashboard/workflows/{id}` for an id no instance has.
    static func notFound(workflow id: String) -> String {
        head(title: "not found — PlexSpaces", refresh: false)
            + "<p><a href=\"/dashboard\">← cluster</a></p>\n<h1>No workflow <code>\(escape(id))</code></h1>\n"
            + "<p class=\"sub\">No instance has this id (or it was purged).</p>\n" + foot()
    }

    // MARK: Pieces

    private static func calls(_ calls: [RecentCall], id: String, now: Int64) -> String {
        guard !calls.isEmpty else { return "<p class=\"empty\" id=\"\(id)\">none</p>" }
        var html = "<table id=\"\(id)\"><tr><th>actor</th><th class=\"n\">took</th><th>outcome</th><th>when</th></tr>\n"
        for call in calls {
            html += "<tr><td><code>\(escape("\(call.actor)"))</code></td>"
            html += "<td class=\"n\">\(duration(call.duration))</td>"
            html += call.error.map { "<td class=\"error\">\(escape($0))</td>" } ?? "<td>ok</td>"
            html += "<td>\(ago(call.endedAt, now: now))</td></tr>\n"
        }
        return html + "</table>"
    }

    private static func outcomeText(_ step: WorkflowStep) -> (text: String, css: String) {
        switch step.outcome {
        case .value?: return ("done", "ok")
        case .failure(let failure)?: return ("failed: \(failure.message)", "bad")
        case .timedOut?: return ("timed out", "bad")
        case nil:
            if let failure = step.lastFailure { return ("retrying after: \(failure.message)", "warn") }
            return ("waiting", "wait")
        }
    }

    private static func maxActivations(_ status: ClusterStatus) -> Int {
        max(status.members.map { Int($0.activations) }.max() ?? 1, 1)
    }

    private static func bar(_ value: Int, of top: Int) -> String {
        let width = top > 0 ? Double(value) / Double(top) * 100 : 0
        return "<div class=\"bar\"><div style=\"width:\(format(width))%\"></div></div>"
    }

    private static func stateClass(_ state: String) -> String {
        switch state {
        case "up", "completed", "joined": "good"
        case "unreachable", "failed", "terminated", "removed": "bad"
        case "leaving", "cancelled", "running": "warn"
        default: "neutral"
        }
    }

    private static func ago(_ milliseconds: Int64, now: Int64) -> String {
        let seconds = max(now - milliseconds, 0) / 1000
        if seconds < 60 { return "\(seconds) s ago" }
        if seconds < 3600 { return "\(seconds / 60) min ago" }
        return "\(seconds / 3600) h ago"
    }

    private static func milliseconds(_ value: Int64) -> String {
        value < 1000 ? "\(value) ms" : "\(format(Double(value) / 1000)) s"
    }

    private static func duration(_ value: Duration) -> String {
        let microseconds = value.clampedNanoseconds / 1000
        return microseconds < 1000 ? "\(microseconds) µs" : milliseconds(Int64(microseconds / 1000))
    }

    private static func format(_ value: Double) -> String {
        let rounded = (value * 10).rounded() / 10
        return rounded == rounded.rounded() ? "\(Int(rounded))" : "\(rounded)"
    }

    private static func percentEncoded(_ text: String) -> String {
        text.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(["/"])) ?? text
    }

    /// Escapes text for HTML content and attribute values.
    static func escape(_ text: String) -> String {
        var result = ""
        result.reserveCapacity(text.utf8.count)
        for character in text {
            switch character {
            case "&": result += "&amp;"
            case "<": result += "&lt;"
            case ">": result += "&gt;"
            case "\"": result += "&quot;"
            case "'": result += "&#39;"
            default: result.append(character)
            }
        }
        return result
    }

    private static func head(title: String, refresh: Bool) -> String {
        """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        \(refresh ? "<meta http-equiv=\"refresh\" content=\"5\">" : "")
        <title>\(escape(title))</title>
        <style>
        body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:24px 32px;color:#1d2430;background:#f6f7f9}
        h1{font-size:22px;margin:0 0 4px} h2{font-size:15px;margin:0 0 8px;color:#3a4454}
        section{background:#fff;border:1px solid #dde1e7;border-radius:8px;padding:14px 16px;margin:14px 0}
        table{border-collapse:collapse;width:100%} th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eef0f3}
        th{font-weight:600;color:#5a6474;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
        td.n,th.n{text-align:right;white-space:nowrap} code{font:12.5px ui-monospace,Menlo,monospace}
        .sub{color:#5a6474;margin:0 0 8px} .empty{color:#8a93a3} .error{color:#b42318}
        .badge{display:inline-block;padding:2px 10px;border-radius:10px;font-weight:600;font-size:12px;color:#fff}
        .good{background:#1f9d55} .bad{background:#d64545} .warn{background:#d98b0b} .neutral{background:#7b8494}
        .bar{display:inline-block;width:120px;height:8px;background:#eef0f3;border-radius:4px;margin-left:10px;vertical-align:middle}
        .bar div{height:8px;background:#4a7bd0;border-radius:4px}
        .step{display:grid;grid-template-columns:260px 1fr 300px;gap:10px;align-items:center;padding:3px 0}
        .track{position:relative;height:14px;background:#eef0f3;border-radius:4px}
        .span{position:absolute;top:0;height:14px;border-radius:4px}
        .span.ok{background:#1f9d55} .span.bad{background:#d64545} .span.warn{background:#d98b0b} .span.wait{background:#9aa5b8}
        .axis{display:flex;justify-content:space-between;margin-left:270px;margin-right:310px;color:#8a93a3;font-size:12px}
        .meta{color:#5a6474;font-size:12px;white-space:nowrap;overflow:hidden;text-overflow:ellipsis}
        a{color:#2456b3}
        </style></head><body>

        """
    }

    private static func foot() -> String {
        "<p class=\"sub\">PlexSpaces · server-rendered, reloads every 5 s while there is something to watch</p>\n"
            + "</body></html>\n"
    }
}
