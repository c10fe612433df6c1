import ArgumentParser
import Foundation
import Logging
import PlexExamples
import PlexSpaces
import PlexTestKit

/// Holds every message for an hour: the first one keeps the turn, and everything after it queues.
struct Stall: VirtualActor {
    static let typeName = "bench-stall"
    func handle(_ request: Int, state: inout NoState, context: ActorContext) async throws -> Int {
        try await Task.sleep(for: .seconds(3600))
        return request
    }
}

/// Resident set size in bytes, from the `VmRSS` line of `/proc/self/status`.
func residentSetBytes() -> Int {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return 0 }
    let kibibytes = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
    return (kibibytes ?? 0) * 1024
}

/// How many file descriptors this process has open.
func openDescriptors() -> Int {
    (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
}

/// The node measured by the `limits` group: a TCP node that prints its resident memory before and after a
/// load the parent applies (strangers connecting, or calls queuing on one actor).
///
/// Prints its ready line, then `baseline <bytes>`; once the load is in place (`expected` descriptors more
/// than at the baseline, or `expected` messages queued on `bench-stall/s`), `loaded <bytes> <count>`.
struct MemoryNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory-node", abstract: "A node that reports its resident memory under a load (limits group).")

    enum Load: String, ExpressibleByArgument { case strangers, queued }

    @Option var dataDir: String
    @Option var load: Load
    @Option(help: "How many strangers or queued calls to wait for.") var expected: Int
    @Option var mailboxLimit = 10_000

    func run() async throws {
        var configuration = NodeConfiguration(
            nodeID: try NodeID("memory"), dataDirectory: dataDir, clusterName: "bench", secret: benchSecret)
        configuration.activation.maximumMailboxDepth = mailboxLimit
        let node = try await PlexNode.start(configuration, logger: quietLogger()) { node in
            node.registerExamples()
            node.register(Stall.self)
        }
        let line =
            "{\"event\":\"ready\",\"node_id\":\"\(node.nodeID)\",\"address\":\"\(node.address)\","
            + "\"incarnation\":\(node.incarnation),\"pid\":\(getpid())}\n"
        FileHandle.standardOutput.write(Data(line.utf8))
        try await Task.sleep(for: .milliseconds(300))
        let descriptors = openDescriptors()
        FileHandle.standardOutput.write(Data("baseline \(residentSetBytes())\n".utf8))
        let stall = ActorID(typeName: Stall.typeName, key: "s")
        let current: @Sendable () -> Int =
            switch load {
            case .strangers: { openDescriptors() - descriptors }
            case .queued: { node.queuedMessages(for: stall) ?? 0 }
            }
        // Strangers are closed by the handshake timeout (5 s): measure as soon as they are all there.
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(120)
        while current() < expected && clock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        try await Task.sleep(for: .milliseconds(200))
        FileHandle.standardOutput.write(Data("loaded \(residentSetBytes()) \(current())\n".utf8))
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}

extension All {
    /// Resident memory of a node with 1,000 idle strangers connected over TCP (sockets that never send a
    /// byte), and with 100,000 calls queued on one actor; the growth per stranger and per queued call.
    func limits() async throws {
        var strangers: [(total: Double, each: Double, held: Double)] = []
        var queued: [(total: Double, each: Double, held: Double)] = []
        for _ in 0..<runs {
            strangers.append(try await measureNode(load: .strangers, count: 1000))
            queued.append(try await measureNode(load: .queued, count: 100_000))
        }
        let mebibyte = Double(1 << 20)
        report("memory_node_1000_strangers_rss", median(strangers.map(\.total)) / mebibyte, "MiB")
        report("memory_node_strangers_held", median(strangers.map(\.held)), "connections")
        report("memory_per_stranger", median(strangers.map(\.each)), "bytes")
        report("memory_node_100k_queued_calls_rss", median(queued.map(\.total)) / mebibyte, "MiB")
        report("memory_node_queued_calls_held", median(queued.map(\.held)), "calls")
        report("memory_per_queued_call", median(queued.map(\.each)), "bytes")
    }

    /// Starts a `memory-node` child, applies the load, and returns its resident bytes under it, the growth
    /// per unit of load, and how many units it held.
    private func measureNode(load: MemoryNode.Load, count: Int) async throws -> (
        total: Double, each: Double, held: Double
    ) {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        let directory = temporaryDirectory("memory-node")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let child = try NodeProcess.launch(
            executable,
            [
                "memory-node", "--data-dir", directory, "--load", load.rawValue, "--expected", "\(count)",
                "--mailbox-limit", "\(max(10_000, 2 * count))",
            ])
        defer { child.terminate() }
        let ready = try await child.waitUntilReady()
        func line(_ prefix: String) async throws -> [Double] {
            var fields: [Double] = []
            try await eventually("the memory node prints '\(prefix)'", within: .seconds(180), poll: .milliseconds(20)) {
                guard child.isRunning else { throw ValidationError("memory node exited: \(child.standardError)") }
                guard let found = child.standardOutput.split(separator: "\n").first(where: { $0.hasPrefix(prefix) })
                else { return false }
                fields = found.split(separator: " ").dropFirst().compactMap { Double($0) }
                return true
            }
            return fields
        }
        let baseline = try await line("baseline ")[0]
        let address = PeerAddress(parsing: ready.address)!
        let loaded: [Double]
        switch load {
        case .strangers:
            let sockets = try (0..<count).map { _ in try openIdleConnection(to: address) }
            defer { for socket in sockets { close(socket) } }
            loaded = try await line("loaded ")
        case .queued:
            let client = try await PlexClient.connect(
                to: address, clusterName: "bench", secret: benchSecret, logger: quietLogger())
            // One call holds the actor; `count` more queue behind it. Their replies never come: the child
            // is stopped first.
            let calls = (0...count).map { n in
                Task { _ = try? await client.ask(Stall.self, key: "s", n, timeout: .seconds(600)) }
            }
            loaded = try await line("loaded ")
            child.terminate()
            for call in calls { await call.value }
            await client.close()
        }
        let held = loaded[1]
        return (loaded[0], (loaded[0] - baseline) / max(1, held), held)
    }
}

/// Opens a TCP connection to `address` that never sends a byte.
func openIdleConnection(to address: PeerAddress) throws -> Int32 {
    let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard descriptor >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    var target = sockaddr_in()
    target.sin_family = sa_family_t(AF_INET)
    target.sin_port = in_port_t(UInt16(address.port).bigEndian)
    guard inet_pton(AF_INET, address.host, &target.sin_addr) == 1 else {
        close(descriptor)
        throw ValidationError("not an IPv4 address: \(address.host)")
    }
    let result = withUnsafePointer(to: &target) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard result == 0 else {
        let code = errno
        close(descriptor)
        throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
    }
    return descriptor
}
