internal import Foundation
internal import Synchronization

/// A `plex node` child process for multi-process tests: started with arguments, ready when it prints its
/// JSON ready line, stopped by its own PID (SIGTERM, or SIGKILL to simulate a crash).
public final class NodeProcess: Sendable {
    /// What the node reported in its ready line.
    public struct Ready: Sendable, Decodable {
        public var node_id: String
        public var address: String
        public var incarnation: UInt64
        public var pid: Int32
    }

    private let process: Process
    private let output = Mutex<[UInt8]>([])
    private let errors = Mutex<[UInt8]>([])
    /// The process id.
    public let pid: Int32

    private init(process: Process) {
        self.process = process
        self.pid = process.processIdentifier
    }

    /// The built `plex` binary (`PLEX_BIN`), if the integration tests are enabled (`PLEX_INTEGRATION=1`).
    public static var binary: String? {
        let env = ProcessInfo.processInfo.environment
        guard env["PLEX_INTEGRATION"] == "1", let path = env["PLEX_BIN"],
            FileManager.default.isExecutableFile(atPath: path)
        else { return nil }
        return path
    }

    /// Starts `binary` with `arguments` and extra environment.
    public static func launch(_ binary: String, _ arguments: [String], environment: [String: String] = [:]) throws
        -> NodeProcess
    {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = arguments
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let node = NodeProcess(process: process)
        out.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            node.output.withLock { $0.append(contentsOf: data) }
        }
        err.fileHandleForReading.readabilityHandler = { handle in
            let data = handle.availableData
            node.errors.withLock { $0.append(contentsOf: data) }
        }
        return node
    }

    /// Everything the process wrote to stdout so far.
    public var standardOutput: String { String(decoding: output.withLock { $0 }, as: UTF8.self) }
    /// Everything the process wrote to stderr so far.
    public var standardError: String { String(decoding: errors.withLock { $0 }, as: UTF8.self) }

    /// Waits for the ready line.
    public func waitUntilReady(within: Duration = .seconds(30)) async throws -> Ready {
        var ready: Ready?
        try await eventually("\(pid) prints its ready line", within: within) {
            guard process.isRunning || ready != nil else {
                throw DeadlineExceeded(what: "process \(pid) exited: \(standardError)")
            }
            for line in standardOutput.split(separator: "\n") where line.contains("\"event\":\"ready\"") {
                ready = try JSONDecoder().decode(Ready.self, from: Data(line.utf8))
                return true
            }
            return false
        }
        return ready!
    }

    /// Whether the process is still running.
    public var isRunning: Bool { process.isRunning }

    /// Sends SIGKILL: a crash, with no chance to leave.
    public func kill9() { if process.isRunning { kill(pid, SIGKILL) } }

    /// Sends SIGTERM: a graceful stop.
    public func terminate() { if process.isRunning { kill(pid, SIGTERM) } }

    /// Waits for the process to exit and returns its status.
    public func waitForExit(within: Duration = .seconds(30)) async throws -> Int32 {
        try await eventually("\(pid) exits", within: within) { !process.isRunning }
        return process.terminationStatus
    }
}
