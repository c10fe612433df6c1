internal import CSpawn
internal import Foundation
internal import Synchronization

#if canImport(Glibc)
    internal import Glibc
    private let systemRead = Glibc.read
#elseif canImport(Darwin)
    internal import Darwin
    private let systemRead = Darwin.read
#endif

/// Spawns one child at a time, so no child inherits another's pipes between `pipe` and close-on-exec.
private let spawning = Mutex<Void>(())

/// A `plex node` child process for multi-process tests: started with arguments, ready when it prints its
/// JSON ready line, stopped by its own PID (SIGTERM, or SIGKILL to simulate a crash).
///
/// Started with `posix_spawn`; its output is read by two plain threads and its exit collected with `waitpid`.
/// (Foundation's `Process` and `readabilityHandler` rest on dispatch sources, and on Linux the test process
/// once crashed inside libdispatch's event loop while children were starting and stopping.)
public final class NodeProcess: Sendable {
    /// What the node reported in its ready line.
    public struct Ready: Sendable, Decodable {
        public var node_id: String
        public var address: String
        public var incarnation: UInt64
        public var pid: Int32
        /// The HTTP gateway's `host:port`, unless it runs without one.
        public var http: String?
        /// The gateway's h2c (HTTP/2 without TLS) `host:port`, if it has that listener.
        public var http2: String?
        /// Whether the gateway's main listener speaks TLS.
        public var http_tls: Bool?
    }

    private let output = Mutex<[UInt8]>([])
    private let errors = Mutex<[UInt8]>([])
    /// The exit status once `waitpid` collected it (a signal number if a signal ended it).
    private let exit = Mutex<Int32?>(nil)
    /// Output streams not yet read to their end.
    private let openStreams = Atomic<Int>(2)
    /// The process id.
    public let pid: Int32

    private init(pid: Int32) {
        self.pid = pid
    }

    /// The built `plex` binary (`PLEX_BIN`), if the integration tests are enabled (`PLEX_INTEGRATION=1`).
    public static var binary: String? {
        let env = ProcessInfo.processInfo.environment
        guard env["PLEX_INTEGRATION"] == "1", let path = env["PLEX_BIN"],
            FileManager.default.isExecutableFile(atPath: path)
        else { return nil }
        return path
    }

    /// Starts `binary` with `arguments` and extra environment (stdin is `/dev/null`).
    /// - Throws: `POSIXError` when the pipes cannot be made or the process cannot be started.
    public static func launch(_ binary: String, _ arguments: [String], environment: [String: String] = [:]) throws
        -> NodeProcess
    {
        let environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        let argv = ([binary] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        let (pid, out, err) = try spawning.withLock { _ throws -> (pid_t, Int32, Int32) in
            var out: [Int32] = [-1, -1]
            var err: [Int32] = [-1, -1]
            guard pipe(&out) == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            guard pipe(&err) == 0 else {
                close(out[0])
                close(out[1])
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
            for descriptor in out + err { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
            var actions = posix_spawn_file_actions_t()
            posix_spawn_file_actions_init(&actions)
            defer { posix_spawn_file_actions_destroy(&actions) }
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
            posix_spawn_file_actions_adddup2(&actions, out[1], 1)
            posix_spawn_file_actions_adddup2(&actions, err[1], 2)
            // Nothing else: a child must not keep this process's sockets (a test node's listening port) open.
            _ = cspawn_close_from(&actions, 3)
            var pid: pid_t = 0
            let rc = posix_spawn(&pid, binary, &actions, nil, argv, envp)
            close(out[1])
            close(err[1])
            guard rc == 0 else {
                close(out[0])
                close(err[0])
                throw POSIXError(POSIXErrorCode(rawValue: rc) ?? .EIO)
            }
            return (pid, out[0], err[0])
        }
        let node = NodeProcess(pid: pid)
        node.read(out) { bytes in node.output.withLock { $0.append(contentsOf: bytes) } }
        node.read(err) { bytes in node.errors.withLock { $0.append(contentsOf: bytes) } }
        return node
    }

    /// Reads `descriptor` on a thread of its own until the end of the stream, then closes it.
    private func read(_ descriptor: Int32, into sink: @escaping @Sendable ([UInt8]) -> Void) {
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 64 * 1024)
            while true {
                let count = buffer.withUnsafeMutableBytes { systemRead(descriptor, $0.baseAddress, $0.count) }
                if count > 0 {
                    sink(Array(buffer[0..<count]))
                } else if count < 0 && errno == EINTR {
                    continue
                } else {
                    break
                }
            }
            close(descriptor)
            self.openStreams.subtract(1, ordering: .releasing)
        }
        thread.start()
    }

    /// Everything the process wrote to stdout so far.
    public var standardOutput: String { String(decoding: output.withLock { $0 }, as: UTF8.self) }
    /// Everything the process wrote to stderr so far.
    public var standardError: String { String(decoding: errors.withLock { $0 }, as: UTF8.self) }

    /// Waits for the ready line.
    public func waitUntilReady(within: Duration = .seconds(30)) async throws -> Ready {
        var ready: Ready?
        try await eventually("\(pid) prints its ready line", within: within) {
            guard isRunning || ready != nil else {
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

    /// Collects the exit status if the process has ended; returns it (nil while it runs). The lock makes sure
    /// the child is reaped once, and never signalled after that (its pid could belong to another process).
    private func poll() -> Int32? {
        exit.withLock { exit in
            if let exit { return exit }
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
            let signal = status & 0x7F
            exit = signal == 0 ? (status >> 8) & 0xFF : signal
            return exit
        }
    }

    /// Whether the process is still running.
    public var isRunning: Bool { poll() == nil }

    /// Sends SIGKILL: a crash, with no chance to leave.
    public func kill9() { signal(SIGKILL) }

    /// Sends SIGTERM: a graceful stop.
    public func terminate() { signal(SIGTERM) }

    /// Sends SIGHUP: a node reloads its TLS certificate files.
    public func hangUp() { signal(SIGHUP) }

    /// Sends SIGSTOP: the process freezes (its sockets stay open, nothing answers) until ``resume()``.
    public func suspend() { signal(SIGSTOP) }

    /// Sends SIGCONT: a process that ``suspend()`` froze runs on.
    public func resume() { signal(SIGCONT) }

    private func signal(_ number: Int32) {
        exit.withLock { exit in
            guard exit == nil else { return }
            var status: Int32 = 0
            if waitpid(pid, &status, WNOHANG) == pid {
                let signal = status & 0x7F
                exit = signal == 0 ? (status >> 8) & 0xFF : signal
                return
            }
            kill(pid, number)
        }
    }

    /// Waits for the process to exit and its output to be read to the end; returns its status (the signal
    /// number if a signal ended it).
    public func waitForExit(within: Duration = .seconds(30)) async throws -> Int32 {
        try await eventually("\(pid) exits", within: within) {
            !isRunning && openStreams.load(ordering: .acquiring) == 0
        }
        return poll() ?? -1
    }
}
