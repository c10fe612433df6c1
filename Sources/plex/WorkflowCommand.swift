import ArgumentParser
import Foundation
import PlexSpaces

/// `plex workflow …`: start instances and reach them from the command line (JSON in, tables or JSON out).
struct WorkflowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflow", abstract: "Start durable workflow instances, follow them, signal and stop them.",
        subcommands: [
            Start.self, Status.self, Result.self, Signal.self, Cancel.self, Terminate.self, History.self,
        ])

    /// Options every workflow command shares.
    struct Common: ParsableArguments {
        @OptionGroup var client: ClientOptions
        @Flag(name: .long, help: "Print JSON instead of a table.")
        var json = false

        var timeout: Duration { .milliseconds(Int(client.timeout * 1000)) }

        /// Connects, runs `body` with a workflow client, and turns typed errors into a message and exit code 1.
        func run(_ body: (WorkflowClient) async throws -> Void) async throws {
            let client = try await exitingOnBadConfiguration { try await self.client.connect() }
            defer { Task { await client.close() } }
            do {
                try await body(WorkflowClient(client: client))
            } catch let error as WorkflowError {
                FileHandle.standardError.write(Data("plex: workflow: \(error)\n".utf8))
                throw ExitCode(1)
            } catch let error as CallError {
                FileHandle.standardError.write(Data("plex: workflow: \(error)\n".utf8))
                throw ExitCode(1)
            }
        }

        func print(_ description: WorkflowDescription) {
            Swift.print(json ? WorkflowView.json(description) : WorkflowView.table(description))
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start an instance (or find the one already started with this id).")
        @Argument(help: "The workflow type, for example order.") var type: String
        @Argument(help: "The instance id.") var id: String
        @Option(name: .long, help: "The input as JSON.") var input: String = "null"
        @OptionGroup var common: Common

        func run() async throws {
            try await common.run { workflows in
                common.print(
                    try await workflows.start(
                        typeName: type, id: id, jsonInput: Array(input.utf8), timeout: common.timeout))
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show an instance's status, the step it is on and its next timer or retry.")
        @Argument(help: "The instance id.") var id: String
        @OptionGroup var common: Common

        func run() async throws {
            try await common.run { workflows in
                common.print(try await workflows.describe(id: id, json: true, timeout: common.timeout))
            }
        }
    }

    struct Result: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wait for an instance to finish and print its result (exit 1 if it did not complete).")
        @Argument(help: "The instance id.") var id: String
        @Option(name: .long, help: "Seconds to wait for it to finish.") var wait: Double = 60
        @OptionGroup var common: Common

        func run() async throws {
            try await common.run { workflows in
                let description = try await workflows.awaitCompletion(
                    id: id, json: true, timeout: .milliseconds(Int(wait * 1000)))
                guard description.status == .completed else {
                    common.print(description)
                    throw ExitCode(1)
                }
                Swift.print(
                    common.json
                        ? WorkflowView.json(description)
                        : String(decoding: description.outputJSON ?? Array("null".utf8), as: UTF8.self))
            }
        }
    }

    struct Signal: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Deliver an event (for example an approval) to an instance.")
        @Argument(help: "The instance id.") var id: String
        @Argument(help: "The event's name.") var name: String
        @Option(name: .long, help: "The event's payload as JSON.") var payload: String = "null"
        @OptionGroup var common: Common

        func run() async throws {
            try await common.run { workflows in
                try await workflows.signal(
                    id: id, name: name, jsonPayload: Array(payload.utf8), timeout: common.timeout)
                Swift.print(common.json ? #"{"delivered":true}"# : "delivered \(name) to \(id)")
            }
        }
    }

    struct Cancel: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask an instance to cancel: its compensations run, and it ends cancelled.")
        @Argument(help: "The instance id.") var id: String
        @OptionGroup var common: Common

        func run() async throws {
            try await common.run { workflows in
                common.print(try await workflows.cancel(id: id, timeout: common.timeout))
            }
        }
    }

    struct Terminate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Stop an instance at once.")
        @Argument(help: "The instance id.") var id: String
        @Option(name: .long, help: "Why (kept with the instance).") var reason: String = "terminated from the CLI"
        @OptionGroup var common: Common

        func run() async throws {
            try await common.run { workflows in
                common.print(try await workflows.terminate(id: id, reason: reason, timeout: common.timeout))
            }
        }
    }

    struct History: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List every step of an instance with its times, attempts and outcome.")
        @Argument(help: "The instance id.") var id: String
        @OptionGroup var common: Common

        func run() async throws {
            try await common.run { workflows in
                let description = try await workflows.describe(id: id, history: true, timeout: common.timeout)
                Swift.print(
                    common.json ? WorkflowView.historyJSON(description) : WorkflowView.historyTable(description))
            }
        }
    }
}

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
                "\(step.position)", step.kind.rawValue, step.name, "\(step.attempts)", time(step.startedAt),
                time(step.dueAt), time(step.completedAt), outcome(step),
            ]
        }
        let all = [header] + rows
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
