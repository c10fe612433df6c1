import ArgumentParser
import Foundation
import Logging
import PlexExamples
import PlexSpaces
import ServiceLifecycle

@main
struct Plex: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plex",
        abstract: "PlexSpaces: durable virtual actors on a cluster of nodes.",
        subcommands: [
            NodeCommand.self, CallCommand.self, ClusterCommand.self, WorkflowCommand.self, JournalCommand.self,
            OCFLCommand.self, CertsCommand.self,
        ])
}

/// Options every client command shares: which node to talk to and how to prove the secret.
struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: "Address of the node to talk to (host:port).")
    var node: String = "127.0.0.1:7101"

    @Option(name: .long, help: "Node config file to take the cluster name and secret from.")
    var config: String?

    @Option(name: .long, help: "Cluster name (default: from --config, else 'plex').")
    var clusterName: String?

    @Option(name: .long, help: "File holding the cluster secret (or set PLEX_CLUSTER_SECRET).")
    var secretFile: String?

    @Option(
        name: .long,
        help: """
            File holding the nodes' caller secret (or set PLEX_CALLER_SECRET): prove it instead of the cluster \
            secret, with the caller role (call actors, read status; not stop or remove nodes).
            """)
    var callerSecretFile: String?

    @Option(name: .long, help: "Seconds to wait for the reply.")
    var timeout: Double = 5

    @OptionGroup(title: "Mutual TLS (a cluster that runs with TLS)")
    var tls: TLSOptions

    func validate() throws {
        guard timeout.isFinite, timeout > 0, timeout <= 86_400 else {
            throw ValidationError("--timeout must be a number of seconds in (0, 86400]")
        }
    }

    func connect() async throws -> PlexClient {
        var clusterName = self.clusterName
        var secretFile = self.secretFile
        var file: ConfigFile?
        if let config {
            let loaded = try loadConfig(config)
            if clusterName == nil, case .string(let name)? = loaded.values["cluster_name"] { clusterName = name }
            if secretFile == nil { secretFile = loaded.path("secret_file") }
            file = loaded
        }
        let tls = try self.tls.load(file)
        // Over TLS a client certificate is the credential (its role decides); a node's certificate, or none,
        // goes with a secret: the caller secret if given, else the cluster secret.
        let credential: HandshakeConfiguration.Credential
        let secret: [UInt8]
        if case .client? = tls?.identity {
            (credential, secret) = (.certificate, [])
        } else if let callerSecret = try readCredential(
            variable: "PLEX_CALLER_SECRET", file: callerSecretFile, key: "caller_secret_file")
        {
            (credential, secret) = (.caller, Array(callerSecret.utf8))
        } else {
            (credential, secret) = (.cluster, try readSecret(file: secretFile))
        }
        guard let address = PeerAddress(parsing: node) else {
            throw ConfigurationFailure(message: "--node: '\(node)' is not host:port")
        }
        var logger = Logger(label: "plex.client")
        logger.logLevel = .warning
        return try await PlexClient.connect(
            to: address, clusterName: clusterName ?? "plex", secret: secret,
            credential: credential, tls: tls, logger: logger)
    }
}

struct ConfigurationFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

func loadConfig(_ path: String) throws -> ConfigFile {
    do {
        return try ConfigFile.load(path)
    } catch let error as ConfigFile.Error {
        throw ConfigurationFailure(message: error.message)
    }
}

/// A credential: the environment variable `variable` if set, else the contents of `file` (trailing newline
/// dropped), else none. `key` names the config key in errors.
func readCredential(variable: String, file: String?, key: String) throws -> String? {
    if let value = ProcessInfo.processInfo.environment[variable], !value.isEmpty { return value }
    guard let file else { return nil }
    guard let data = FileManager.default.contents(atPath: file) else {
        throw ConfigurationFailure(message: "\(key): cannot read '\(file)'")
    }
    var text = String(decoding: data, as: UTF8.self)
    while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
    return text
}

/// The HTTP gateway's bearer token: `PLEX_HTTP_TOKEN` if set, else `http_token_file`'s contents, else none.
func readHTTPToken(file: String?) throws -> String? {
    try readCredential(variable: "PLEX_HTTP_TOKEN", file: file, key: "http_token_file")
}

/// The cluster secret: `PLEX_CLUSTER_SECRET` if set, else the file's contents (trailing newline dropped).
func readSecret(file: String?) throws -> [UInt8] {
    guard let secret = try readCredential(variable: "PLEX_CLUSTER_SECRET", file: file, key: "secret_file") else {
        throw ConfigurationFailure(
            message: "secret_file: no cluster secret (set secret_file, --secret-file or PLEX_CLUSTER_SECRET)")
    }
    return Array(secret.utf8)
}

/// Runs `body`; a configuration failure prints its message and exits with code 2.
func exitingOnBadConfiguration<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let error as ConfigurationFailure {
        FileHandle.standardError.write(Data("plex: configuration error: \(error.message)\n".utf8))
        throw ExitCode(2)
    } catch let error as NodeError where error.code == .invalidConfiguration {
        FileHandle.standardError.write(Data("plex: configuration error: \(error.message)\n".utf8))
        throw ExitCode(2)
    }
}

struct CallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "call", abstract: "Send a JSON request to an actor and print the JSON reply.")

    @Argument(help: "The actor: type/key, for example counter/c1.")
    var actor: String

    @Argument(help: "The request as JSON, for example '\"increment\"' or '{\"text\":\"hi\"}'.")
    var json: String

    @Option(name: .long, help: "Idempotency key: retrying with the same key returns the stored reply.")
    var idempotencyKey: String?

    @Option(
        name: .long,
        help: "Send the request this many times (a bulk call; '{n}' in the actor's key becomes 0, 1, 2, …).")
    var `repeat`: Int = 1

    @Option(name: .long, help: "With --repeat: how many calls are in flight at once.")
    var concurrency: Int = 16

    @Flag(name: .long, help: "Show progress on stderr even when it is not a terminal.")
    var progress = false

    @OptionGroup var client: ClientOptions

    func validate() throws {
        guard `repeat` >= 1 else { throw ValidationError("--repeat must be at least 1") }
        guard `repeat` <= 10_000_000 else { throw ValidationError("--repeat is at most 10,000,000") }
        guard (1...4096).contains(concurrency) else { throw ValidationError("--concurrency must be 1...4096") }
        if `repeat` > 1 && idempotencyKey != nil {
            throw ValidationError("--idempotency-key with --repeat would make every call after the first a retry")
        }
    }

    func run() async throws {
        let client = try await exitingOnBadConfiguration { try await self.client.connect() }
        defer { Task { await client.close() } }
        if `repeat` > 1 || actor.contains("{n}") {
            return try await BulkCall(
                actor: actor, json: Array(json.utf8), count: `repeat`, concurrency: concurrency,
                timeout: .milliseconds(Int(self.client.timeout * 1000)), progress: Progress(forced: progress)
            ).run(client)
        }
        let id = try ActorID(parsing: actor)
        do {
            let reply = try await client.call(
                id, json: Array(json.utf8), timeout: .milliseconds(Int(self.client.timeout * 1000)),
                idempotencyKey: idempotencyKey)
            print(String(decoding: reply, as: UTF8.self))
        } catch let error as CallError {
            FileHandle.standardError.write(Data("plex: call failed: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct ClusterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "cluster", abstract: "Inspect the cluster, or remove a dead member.",
        subcommands: [Status.self, Remove.self])

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Take a dead member out of the ring for good, and say what that loses.",
            discussion: """
                For a member that crashed and will not come back. Its actors are placed on the others; durable \
                actors whose state was only in its journal start again from their initial state. A member that \
                is up and reachable is refused: stop it with plex node stop, which hands its actors off. The \
                answering node asks every member it can reach; the removal is refused unless all of them see the \
                member as unreachable and they (with the answering node) are a majority of the other members. A \
                removed member that is in fact alive stops when it next hears from the cluster.
                """)

        @Argument(help: "The node id of the member to remove.")
        var member: String

        @Flag(help: "Remove even if the members that confirm are not a majority (the others are gone for good too).")
        var force = false

        @OptionGroup var client: ClientOptions

        func run() async throws {
            let client = try await exitingOnBadConfiguration { try await self.client.connect() }
            let outcome = try await client.removeMember(member, force: force)
            await client.close()
            print(outcome)
            if outcome.hasPrefix("refused") { throw ExitCode(1) }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Members, their state, incarnation and activations.")

        @OptionGroup var client: ClientOptions

        @Flag(help: "Print JSON for scripts.")
        var json = false

        func run() async throws {
            let client = try await exitingOnBadConfiguration { try await self.client.connect() }
            let status = try await client.status()
            await client.close()
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys]
                print(String(decoding: try encoder.encode(status), as: UTF8.self))
                return
            }
            print("cluster \(status.clusterName), as seen by \(status.answeredBy)")
            if status.membership != "joined" { print("\(status.answeredBy) is \(status.membership)") }
            print(
                "NODE".padding(toLength: 14, withPad: " ", startingAt: 0)
                    + "ADDRESS".padding(toLength: 22, withPad: " ", startingAt: 0)
                    + "STATE".padding(toLength: 13, withPad: " ", startingAt: 0) + "INCARNATION  ACTIVATIONS")
            for m in status.members {
                print(
                    m.nodeID.padding(toLength: 14, withPad: " ", startingAt: 0)
                        + m.address.padding(toLength: 22, withPad: " ", startingAt: 0)
                        + m.state.padding(toLength: 13, withPad: " ", startingAt: 0)
                        + String(m.incarnation).padding(toLength: 13, withPad: " ", startingAt: 0)
                        + String(m.activations))
            }
            for (name, target) in status.named.sorted(by: { $0.key < $1.key }) { print("named \(name) -> \(target)") }
            for warning in status.warnings { print("warning (\(status.answeredBy)): \(warning)") }
        }
    }
}
