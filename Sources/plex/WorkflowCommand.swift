import ArgumentParser
import Foundation
import PlexGateway
import PlexSpaces

/// `plex workflow …`: start instances and reach them from the command line (JSON in, tables or JSON out).
struct WorkflowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workflow", abstract: "Start durable workflow instances, follow them, signal and stop them.",
        subcommands: [
            Start.self, Status.self, Result.self, Signal.self, Query.self, Cancel.self, Terminate.self,
            History.self, List.self, Purge.self,
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
            Swift.print(json ? WorkflowJSON.description(description) : WorkflowView.table(description))
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
                let description = try await workflows.describe(id: id, json: true, timeout: common.timeout)
                guard description.status != .pending else {
                    throw WorkflowError(.notFound, "no workflow instance has been started with id '\(id)'")
                }
                common.print(description)
            }
        }
    }

    struct Result: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Wait for an instance to finish and print its result (exit 1 if it did not complete).")
        @Argument(help: "The instance id.") var id: String
        @Option(name: .long, help: "Seconds to wait for it to finish.") var wait: Double = 60
        @Flag(name: .long, help: "Show the instance's progress on stderr even when it is not a terminal.")
        var progress = false
        @OptionGroup var common: Common

        func validate() throws {
            guard wait.isFinite, wait >= 0, wait <= 86_400 else {
                throw ValidationError("--wait must be a number of seconds in [0, 86400]")
            }
        }

        func run() async throws {
            try await common.run { workflows in
                let description = try await Self.await(
                    id, workflows: workflows, wait: .milliseconds(Int(wait * 1000)), timeout: common.timeout,
                    progress: Progress(forced: progress))
                guard description.status == .completed else {
                    common.print(description)
                    throw ExitCode(1)
                }
                Swift.print(
                    common.json
                        ? WorkflowJSON.description(description)
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
                    common.json ? WorkflowJSON.history(description) : WorkflowView.historyTable(description))
            }
        }
    }

    struct Query: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Ask a running instance's query handler (nothing is journaled); prints its JSON answer.")
        @Argument(help: "The instance id.") var id: String
        @Argument(help: "The query's name.") var name: String
        @OptionGroup var common: Common

        func run() async throws {
            try await common.run { workflows in
                let answer = try await workflows.query(id: id, name: name, timeout: common.timeout)
                Swift.print(String(decoding: answer, as: UTF8.self))
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "List the cluster's instances, newest first (from the index kept in the nodes' journals).")
        @Option(name: .long, help: "Only instances of this workflow type.") var type: String?
        @Option(
            name: .long,
            help:
                "Only instances with this status (\(WorkflowStatus.allCases.map(\.rawValue).joined(separator: ", "))).")
        var status: String?
        @Option(name: .long, help: "At most this many.") var limit: Int = 100
        @OptionGroup var common: Common

        func validate() throws {
            if let status, WorkflowStatus(rawValue: status) == nil {
                throw ValidationError("unknown status '\(status)'")
            }
            if limit < 1 { throw ValidationError("--limit must be at least 1") }
        }

        func run() async throws {
            try await common.run { workflows in
                let found = try await workflows.list(
                    type: type, status: status.flatMap(WorkflowStatus.init), limit: limit, timeout: common.timeout)
                Swift.print(common.json ? WorkflowJSON.list(found) : WorkflowView.listTable(found))
            }
        }
    }

    struct Purge: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Forget finished instances (their history and result); their ids can be started again.",
            discussion:
                "Give instance ids, or --status (and optionally --type) to purge every finished instance listed.")
        @Argument(help: "The instance ids.") var ids: [String] = []
        @Option(name: .long, help: "Purge every instance of this type (with --status).") var type: String?
        @Option(name: .long, help: "Purge every instance with this status: completed, failed, cancelled or terminated.")
        var status: String?
        @OptionGroup var common: Common

        func validate() throws {
            if let status {
                guard let parsed = WorkflowStatus(rawValue: status), parsed.isClosed else {
                    throw ValidationError("--status must be completed, failed, cancelled or terminated")
                }
            }
            if ids.isEmpty && status == nil { throw ValidationError("give instance ids or --status") }
            if !ids.isEmpty && (status != nil || type != nil) {
                throw ValidationError("give instance ids or --status/--type, not both")
            }
        }

        func run() async throws {
            try await common.run { workflows in
                var targets = ids
                if let status = status.flatMap(WorkflowStatus.init) {
                    targets = try await workflows.list(
                        type: type, status: status, limit: .max, timeout: common.timeout
                    ).map(\.id)
                }
                for id in targets { try await workflows.purge(id: id, timeout: common.timeout) }
                Swift.print(common.json ? #"{"purged":\#(targets.count)}"# : "purged \(targets.count) instance(s)")
            }
        }
    }
}

extension WorkflowCommand.Result {
    /// Waits for `id` to finish, showing its status, step and elapsed time meanwhile.
    static func await(
        _ id: String, workflows: WorkflowClient, wait: Duration, timeout: Duration, progress: Progress
    ) async throws -> WorkflowDescription {
        let started = ContinuousClock.now
        return try await withThrowingTaskGroup(of: WorkflowDescription?.self) { group in
            group.addTask { try await workflows.awaitCompletion(id: id, json: true, timeout: wait) }
            group.addTask {
                while !Task.isCancelled {
                    if let now = try? await workflows.describe(id: id, timeout: timeout) {
                        let elapsed = Int((ContinuousClock.now - started) / .seconds(1))
                        progress.update(
                            "waiting for \(id): \(now.status.rawValue), \(now.stepCount) step(s)"
                                + (now.currentStep.map { ", at \($0)" } ?? "") + ", \(elapsed) s", force: true)
                    }
                    try? await Task.sleep(for: .seconds(1))
                }
                return nil
            }
            defer {
                group.cancelAll()
                progress.finish()
            }
            while let result = try await group.next() {
                if let result { return result }
            }
            throw CancellationError()
        }
    }
}
