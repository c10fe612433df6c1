import ArgumentParser
import Foundation
import Logging
import PlexExamples
import PlexSpaces

/// `plex ocfl update SOURCE OBJECT`: scenario 5, an OCFL object update as a durable workflow, run by a node
/// embedded in this process with its journal next to the object.
struct OCFLCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ocfl", abstract: "OCFL 1.1 objects updated by a durable workflow.", subcommands: [Update.self])

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make SOURCE's content the next version of the OCFL object at OBJECT.",
            discussion: """
                Stages SOURCE (SHA-512 of every file), plans the version and runs one journaled step per file and \
                inventory, printing a line per step. Killed midway, the same command resumes where it stopped; \
                run again with nothing changed, it says so. The workflow's journal is kept in --data-dir \
                (default: OBJECT.plex).
                """)

        @Argument(help: "The directory whose content becomes the next version.")
        var source: String

        @Argument(help: "The OCFL object's root directory (created for version 1).")
        var object: String

        @Option(help: "The object's identifier, a URI (default: urn:plex:ocfl:<the object directory's name>).")
        var id: String?

        @Option(help: "The version's message.")
        var message = "deposited by plex"

        @Option(help: "Where the workflow's journal is kept (default: OBJECT.plex).")
        var dataDir: String?

        @Option(help: "Milliseconds to wait before each step (to watch an update, or interrupt it).")
        var stepDelayMs = 0

        func run() async throws {
            // Canonical paths (symbolic links resolved): the journal's lock then keeps two updates of one object
            // apart whichever path names it.
            let source = URL(fileURLWithPath: self.source).resolvingSymlinksInPath().standardizedFileURL.path
            let object = URL(fileURLWithPath: self.object).resolvingSymlinksInPath().standardizedFileURL.path
            let journal = dataDir.map { URL(fileURLWithPath: $0).resolvingSymlinksInPath().path } ?? object + ".plex"
            guard FileManager.default.fileExists(atPath: source) else {
                throw ConfigurationFailure(message: "no source directory \(source)")
            }
            func inside(_ path: String, _ directory: String) -> Bool {
                path == directory || path.hasPrefix(directory + "/")
            }
            guard !inside(object, source), !inside(source, object), !inside(journal, source) else {
                throw ConfigurationFailure(
                    message: "the object (\(object)) and its journal (\(journal)) must be outside the source "
                        + "(\(source)), and the source outside the object")
            }
            let engine = WorkflowEngine()
            engine.register(OCFLUpdateWorkflow.self)
            engine.register(activity: OCFLStage())
            engine.register(activity: OCFLReadInventory())
            engine.register(
                activity: OCFLApplyStep(delay: .milliseconds(stepDelayMs)) { line in
                    FileHandle.standardOutput.write(Data((line + "\n").utf8))
                })
            var logger = Logger(label: "plex.ocfl")
            logger.logLevel = .error
            let node = try await PlexNode.start(
                NodeConfiguration(
                    dataDirectory: dataDir ?? object + ".plex", secret: Array("plex-ocfl-embedded-node".utf8)),
                transport: .inMemory(InMemoryNetwork()), logger: logger
            ) { engine.install(on: $0) }
            defer { Task { await node.shutdown() } }
            let client = WorkflowClient(node: node)
            // One instance per version: the next one is the head's number + 1 (the root inventory is written
            // last, so a killed update is found again under the same id). A closed instance under that id
            // found nothing to do, or failed: it is run again.
            let next = (OCFLInventory.read(rootOf: object)?.headNumber ?? 0) + 1
            let instance = "ocfl:\(object)#v\(next)"
            if let known = try? await client.describe(id: instance), known.status.isClosed {
                try await client.purge(id: instance)
            }
            let handle = try await client.start(
                OCFLUpdateWorkflow.self, id: instance,
                input: .init(
                    source: source, object: object,
                    id: id ?? "urn:plex:ocfl:\(URL(fileURLWithPath: object).lastPathComponent)",
                    message: message))
            let output = try await handle.result(timeout: .seconds(24 * 3600))
            if output.steps == 0 {
                print("nothing to do: \(output.version) of \(object) already holds the content of \(source)")
            } else {
                print("\(object) is at \(output.version) (\(output.steps) steps)")
            }
            await node.shutdown()
        }
    }
}
