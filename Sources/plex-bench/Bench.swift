import ArgumentParser
import Foundation
import Logging
import PlexExamples
import PlexJournal
import PlexSpaces
import PlexTestKit

/// The project's benchmark. Prints one `name value unit` line per figure (medians of `--runs` runs).
@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "plex-bench", abstract: "Measure PlexSpaces on this machine.",
        subcommands: [
            All.self, Serve.self, Memory.self, MemoryNode.self, ProfileLoop.self, WorkflowProfile.self,
            HTTPBaseline.self,
        ],
        defaultSubcommand: All.self
    )
}

let benchSecret = Array("bench-secret-0123456789".utf8)

func quietLogger() -> Logger {
    var logger = Logger(label: "bench")
    logger.logLevel = .error
    return logger
}

func report(_ name: String, _ value: Double, _ unit: String) {
    let text = value >= 100 ? String(format: "%.0f", value) : String(format: "%.2f", value)
    FileHandle.standardOutput.write(Data("\(name) \(text) \(unit)\n".utf8))
}

func median(_ values: [Double]) -> Double {
    let sorted = values.sorted()
    return sorted[sorted.count / 2]
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// A new directory's path under this process's scratch directory, which is removed when the process exits
/// (the benchmarks' nodes and journals are not kept).
func temporaryDirectory(_ name: String) -> String {
    benchScratch + "/\(name)-\(UInt32.random(in: 0...UInt32.max))"
}

/// This process's scratch directory, removed at exit.
let benchScratch = processScratchDirectory("plex-bench")

/// Runs `callers` tasks that each call `body` until `duration` passes; returns calls per second.
///
/// Each caller reads the clock every `checkEvery` operations (reading it after every microsecond-long call
/// would cost a few percent) and stops at the first read past the window, so the run lasts until the last
/// caller's batch ends. Operations that take milliseconds (a workflow) must use a small `checkEvery`:
/// with 64, each caller's last batch ran up to 64 operations past the window while fewer and fewer callers
/// were left, and the rate counted that tail as if it were the load asked for.
func throughput(
    callers: Int, duration: Duration, executor: (any TaskExecutor)? = nil, checkEvery: Int = 64,
    _ body: @escaping @Sendable (Int, Int) async throws -> Void
) async throws -> Double {
    let clock = ContinuousClock()
    let start = clock.now
    let end = start + duration
    let total = try await withThrowingTaskGroup(of: Int.self) { group in
        for caller in 0..<callers {
            group.addTask(executorPreference: executor) {
                var n = 0
                while true {
                    for _ in 0..<checkEvery {
                        try await body(caller, n)
                        n += 1
                    }
                    if clock.now >= end { return n }
                }
            }
        }
        return try await group.reduce(0, +)
    }
    return Double(total) / seconds(clock.now - start)
}

struct All: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "all", abstract: "Run every benchmark.")

    @Option(help: "Runs per figure; the median is printed.")
    var runs = 3

    @Option(help: "Seconds per throughput run.")
    var seconds: Double = 2

    @Option(
        help:
            "Run only these groups (comma-separated: codec, local, cross, memory, journal, durable, recovery, limits, restart, workflows, scenarios, tls)."
    )
    var only: String?

    func run() async throws {
        printMachine()
        let window = Duration.milliseconds(Int(seconds * 1000))
        let groups = Set(
            (only ?? "codec,local,cross,memory,journal,durable,recovery,limits,restart,workflows,scenarios,tls").split(
                separator: ","
            )
            .map(
                String.init))
        if groups.contains("codec") { try await codec() }
        if groups.contains("local") { try await local(window: window) }
        if groups.contains("cross") { try await crossNode(window: window) }
        if groups.contains("memory") { try await memory() }
        if groups.contains("journal") { try await journal(window: window) }
        if groups.contains("durable") { try await durable(window: window) }
        if groups.contains("recovery") { try await recovery() }
        if groups.contains("limits") { try await limits() }
        if groups.contains("restart") { try await coldRestart() }
        if groups.contains("workflows") { try await workflows(window: window) }
        if groups.contains("scenarios") { try await scenarios(window: window) }
        if groups.contains("tls") { try await tls(window: window) }
    }

    func printMachine() {
        let cpu =
            (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("model name") }?
            .split(separator: ":").last?.trimmingCharacters(in: .whitespaces) ?? "unknown"
        let line =
            "# machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(cpu), "
            + "\(ProcessInfo.processInfo.physicalMemory / (1 << 30)) GiB; build: release\n"
        FileHandle.standardOutput.write(Data(line.utf8))
    }

    func codec() async throws {
        struct Order: Codable, Sendable {
            var id: Int
            var customer: String
            var items: [String]
            var total: Double
            var express: Bool
        }
        let order = Order(id: 123_456, customer: "customer-42", items: ["a", "bb", "ccc"], total: 99.5, express: true)
        let binary = BinaryMessageCodec()
        let json = JSONMessageCodec()
        func measure<T: Codable>(_ value: T, _ codec: any MessageCodec) throws -> Double {
            var results: [Double] = []
            for _ in 0..<runs {
                let clock = ContinuousClock()
                let start = clock.now
                var n = 0
                while clock.now - start < .milliseconds(500) {
                    for _ in 0..<1000 {
                        let bytes = try codec.encode(value)
                        _ = try codec.decode(T.self, from: bytes)
                    }
                    n += 1000
                }
                results.append(Double(n) / Bench_seconds(clock.now - start))
            }
            return median(results)
        }
        for (name, codec) in [("binary", binary as any MessageCodec), ("json", json)] {
            report("codec_\(name)_order_roundtrip", try measure(order, codec), "ops/s")
            report("codec_\(name)_order_size", Double(try codec.encode(order).count), "bytes")
            report(
                "codec_\(name)_counter_request_roundtrip", try measure(Counter.Request.add(amount: 5), codec), "ops/s")
            report(
                "codec_\(name)_counter_request_size", Double(try codec.encode(Counter.Request.add(amount: 5)).count),
                "bytes")
        }
    }

    func local(window: Duration) async throws {
        var configuration = NodeConfiguration(dataDirectory: temporaryDirectory("local"), secret: benchSecret)
        configuration.activation.maximumActivations = 2_000_000
        let node = try await PlexNode.start(
            configuration, transport: .inMemory(InMemoryNetwork()), logger: quietLogger()
        ) { $0.registerExamples() }
        defer { try? FileManager.default.removeItem(atPath: configuration.dataDirectory) }
        let one = node.actor(Counter.self, key: "one")
        let many = (0..<1000).map { node.actor(Counter.self, key: "many-\($0)") }
        for ref in many { _ = try await ref.ask(.get) }
        for callers in [1, 2] {
            var results: [Double] = []
            for _ in 0..<runs {
                results.append(
                    try await throughput(callers: callers, duration: window) { _, _ in _ = try await one.ask(.increment)
                    })
            }
            report("local_ask_1_actor_\(callers)_callers", median(results), "calls/s")
        }
        for callers in [1, 2] {
            var results: [Double] = []
            for _ in 0..<runs {
                results.append(
                    try await throughput(callers: callers, duration: window) { caller, n in
                        _ = try await many[(n &* 7 &+ caller &* 500) % 1000].ask(.increment)
                    })
            }
            report("local_ask_1000_actors_\(callers)_callers", median(results), "calls/s")
        }
        await node.shutdown()
    }

    func crossNode(window: Duration) async throws {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        let serverDirectory = temporaryDirectory("server")
        let server = try NodeProcess.launch(executable, ["serve", "--data-dir", serverDirectory])
        defer {
            server.terminate()
            try? FileManager.default.removeItem(atPath: serverDirectory)
        }
        let ready = try await server.waitUntilReady()
        let directory = temporaryDirectory("caller")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let configuration = NodeConfiguration(
            nodeID: try NodeID("caller"), seeds: [PeerAddress(parsing: ready.address)!], dataDirectory: directory,
            clusterName: "bench", secret: benchSecret)
        let node = try await PlexNode.start(configuration, logger: quietLogger()) { $0.registerExamples() }
        let remote = try NodeID(ready.node_id)
        var refs: [ActorRef<Counter>] = []
        var i = 0
        while refs.count < 64 {
            let key = "x\(i)"
            if node.owner(of: ActorID(typeName: Counter.typeName, key: key)) == remote {
                refs.append(node.actor(Counter.self, key: key))
            }
            i += 1
        }
        let targets = refs
        for ref in targets { _ = try await ref.ask(.get) }

        // Sequential latency, one caller: on the node's I/O executor (no thread hops), then on the global pool.
        let clock = ContinuousClock()
        for (suffix, executor) in [("", node.taskExecutor), ("_pool", nil)] {
            var p50s: [Double] = []
            var p99s: [Double] = []
            var sequentialRates: [Double] = []
            for _ in 0..<runs {
                let (rate, p50, p99) = try await withTaskExecutorPreference(executor) {
                    var samples: [Double] = []
                    samples.reserveCapacity(50_000)
                    let start = clock.now
                    while clock.now - start < window {
                        let t0 = clock.now
                        _ = try await targets[0].ask(.increment)
                        samples.append(Bench_seconds(clock.now - t0) * 1e6)
                    }
                    let rate = Double(samples.count) / Bench_seconds(clock.now - start)
                    samples.sort()
                    return (rate, samples[samples.count / 2], samples[Int(Double(samples.count) * 0.99)])
                }
                sequentialRates.append(rate)
                p50s.append(p50)
                p99s.append(p99)
            }
            report("cross_node_ask_1_caller\(suffix)", median(sequentialRates), "calls/s")
            report("cross_node_ask_sequential\(suffix)_p50", median(p50s), "us")
            report("cross_node_ask_sequential\(suffix)_p99", median(p99s), "us")
        }

        for (suffix, executor) in [("", node.taskExecutor), ("_pool", nil)] {
            var rates: [Double] = []
            var bytesPerCall: [Double] = []
            for _ in 0..<runs {
                let before = node.transportStatistics
                let calls = Counter_box()
                let rate = try await throughput(callers: 64, duration: window, executor: executor) { caller, _ in
                    _ = try await targets[caller].ask(.increment)
                    calls.add()
                }
                let after = node.transportStatistics
                rates.append(rate)
                let bytes = (after.bytesSent - before.bytesSent) + (after.bytesReceived - before.bytesReceived)
                bytesPerCall.append(Double(bytes) / Double(calls.value))
            }
            report("cross_node_ask_64_callers\(suffix)", median(rates), "calls/s")
            if suffix.isEmpty { report("cross_node_bytes_per_call", median(bytesPerCall), "bytes") }
        }
        await node.shutdown()
    }

    /// The journal alone (synchronous=FULL): group-commit throughput with 256 concurrent appenders of one
    /// 64-byte entry each, their latency, a single appender's latency, and bytes per entry on disk; with the
    /// default one shard, then with two (the figures' names end in `_2_shards`).
    func journal(window: Duration) async throws {
        for shards in [1, 2] { try await journal(window: window, shards: shards) }
    }

    func journal(window: Duration, shards: Int) async throws {
        let suffix = shards == 1 ? "" : "_\(shards)_shards"
        let clock = ContinuousClock()
        var rates: [Double] = []
        var p99s: [Double] = []
        var singles: [Double] = []
        var bytesPerEntry: [Double] = []
        for run in 0..<runs {
            let directory = temporaryDirectory("journal-\(run)")
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let journal = try await Journal.open(
                path: directory + "/journal.sqlite", configuration: JournalConfiguration(shards: shards))
            let payload = [UInt8](repeating: 7, count: 64)
            let latencies = LatencyBox()
            let start = clock.now
            let end = start + window
            let total = try await withThrowingTaskGroup(of: Int.self) { group in
                for appender in 0..<256 {
                    group.addTask {
                        let actor = ActorID(typeName: "bench", key: "a\(appender)")
                        var sequence: UInt64 = 0
                        while clock.now < end {
                            sequence += 1
                            let t0 = clock.now
                            try await journal.append([
                                JournalEntry(
                                    actor: actor, sequence: sequence, kind: .message, time: 0, payload: payload)
                            ])
                            latencies.add(Bench_seconds(clock.now - t0) * 1e6)
                        }
                        return Int(sequence)
                    }
                }
                return try await group.reduce(0, +)
            }
            rates.append(Double(total) / Bench_seconds(clock.now - start))
            p99s.append(latencies.percentile(0.99))
            try await journal.flushWriteAheadLog()
            let statistics = try await journal.statistics()
            bytesPerEntry.append(Double(statistics.bytes) / Double(max(1, statistics.entries)))
            // One appender alone: the latency of a single durable commit.
            let actor = ActorID(typeName: "bench", key: "single")
            var sequence: UInt64 = 0
            singles.append(
                try await medianLatency(of: 300) {
                    sequence += 1
                    try await journal.append([
                        JournalEntry(actor: actor, sequence: sequence, kind: .message, time: 0, payload: payload)
                    ])
                })
            await journal.close()
        }
        report("journal_append_256_appenders\(suffix)", median(rates), "entries/s")
        report("journal_append_256_appenders_p99\(suffix)", median(p99s), "us")
        report("journal_append_single_p50\(suffix)", median(singles), "us")
        report("journal_bytes_per_entry\(suffix)", median(bytesPerEntry), "bytes")
    }

    /// The median latency (µs) of `count` sequential runs of `body`.
    func medianLatency(of count: Int, _ body: () async throws -> Void) async throws -> Double {
        let clock = ContinuousClock()
        let latencies = LatencyBox()
        for _ in 0..<count {
            let t0 = clock.now
            try await body()
            latencies.add(Bench_seconds(clock.now - t0) * 1e6)
        }
        return latencies.percentile(0.5)
    }

    /// Durable `ask` on one node (synchronous=FULL): 256 callers over 1,000 ledgers, and one caller alone.
    func durable(window: Duration) async throws {
        let clock = ContinuousClock()
        var rates: [Double] = []
        var p99s: [Double] = []
        var singles: [Double] = []
        var p50s: [Double] = []
        var hotRates: [Double] = []
        for run in 0..<runs {
            let directory = temporaryDirectory("durable-\(run)")
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let node = try await PlexNode.start(
                NodeConfiguration(dataDirectory: directory, secret: benchSecret),
                transport: .inMemory(InMemoryNetwork()), logger: quietLogger()
            ) { $0.registerExamples() }
            let ledgers = (0..<1000).map { node.actor(Ledger.self, key: "l\($0)") }
            let latencies = LatencyBox()
            let rate = try await throughput(callers: 256, duration: window) { caller, n in
                let t0 = clock.now
                _ = try await ledgers[(caller &* 7 &+ n &* 13) % 1000].ask(.deposit(amount: 1))
                latencies.add(Bench_seconds(clock.now - t0) * 1e6)
            }
            rates.append(rate)
            p99s.append(latencies.percentile(0.99))
            p50s.append(latencies.percentile(0.5))
            // One hot actor: its messages pipeline through the group commit while their replies wait.
            hotRates.append(
                try await throughput(callers: 64, duration: window) { _, _ in
                    _ = try await ledgers[1].ask(.deposit(amount: 1))
                })
            singles.append(try await medianLatency(of: 300) { _ = try await ledgers[0].ask(.deposit(amount: 1)) })
            await node.shutdown()
        }
        report("durable_ask_256_callers_1000_actors", median(rates), "calls/s")
        report("durable_ask_256_callers_p99", median(p99s), "us")
        report("durable_ask_256_callers_p50", median(p50s), "us")
        report("durable_ask_64_callers_1_actor", median(hotRates), "calls/s")
        report("durable_ask_single_caller_p50", median(singles), "us")
        try await durableWithRun(window: window)
    }

    /// Recovery of one ledger with 100,000 journaled messages: full replay versus the latest checkpoint
    /// (written 100 messages before the end) plus the tail.
    func recovery() async throws {
        let messages = 100_000
        let directory = temporaryDirectory("recovery")
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let codec = BinaryMessageCodec()
        let deposit = try codec.encode(Ledger.Request.deposit(amount: 1))
        func fill(_ journal: Journal, key: String) async throws {
            let actor = ActorID(typeName: Ledger.typeName, key: key)
            for start in stride(from: 1, through: messages, by: 5_000) {
                let batch = (start..<(start + 5_000)).map { sequence in
                    JournalEntry(
                        actor: actor, sequence: UInt64(sequence), kind: .message, time: 0, payload: deposit, reply: [])
                }
                try await journal.append(batch)
            }
        }
        let journal = try await Journal.open(path: directory + "/journal.sqlite")
        try await fill(journal, key: "full")
        try await fill(journal, key: "checkpointed")
        var state = Ledger.State()
        state.balance = messages - 100
        state.operations = messages - 100
        try await journal.write(
            Checkpoint(
                actor: ActorID(typeName: Ledger.typeName, key: "checkpointed"), sequence: UInt64(messages - 100),
                time: 0, state: try codec.encode(state)))
        let clock = ContinuousClock()
        var full: [Double] = []
        var fromCheckpoint: [Double] = []
        for _ in 0..<runs {
            var start = clock.now
            let a = try await StateInspector.state(of: Ledger.self, key: "full", in: journal)
            full.append(Bench_seconds(clock.now - start) * 1000)
            start = clock.now
            let b = try await StateInspector.state(of: Ledger.self, key: "checkpointed", in: journal)
            fromCheckpoint.append(Bench_seconds(clock.now - start) * 1000)
            precondition(a.state.balance == messages && b.state.balance == messages)
        }
        await journal.close()
        report("recovery_100k_messages_full_replay", median(full), "ms")
        report("recovery_100k_messages_from_checkpoint", median(fromCheckpoint), "ms")
        report("recovery_checkpoint_saving", (1 - median(fromCheckpoint) / median(full)) * 100, "%")
    }

    func memory() async throws {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        var results: [Double] = []
        for _ in 0..<runs {
            let child = try NodeProcess.launch(executable, ["memory"])
            _ = try await child.waitForExit(within: .seconds(120))
            guard let line = child.standardOutput.split(separator: "\n").last, let value = Double(line) else {
                throw ValidationError("memory child printed no figure: \(child.standardError)")
            }
            results.append(value)
        }
        report("memory_per_idle_activation", median(results), "bytes")
    }
}

/// Resident set size in bytes, from /proc/self/statm.
/// glibc's `malloc_trim` (not in the Glibc module): hands freed heap memory back to the system.
@_silgen_name("malloc_trim")
func mallocTrim(_ pad: Int) -> Int32

/// Resident bytes of this process, after handing memory freed back to the system (so a figure taken after
/// objects were released does not count the allocator's high-water mark).
func residentBytes() -> Int {
    _ = mallocTrim(0)
    guard let text = try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8) else { return 0 }
    let fields = text.split(separator: " ")
    return (Int(fields[1]) ?? 0) * Int(sysconf(Int32(_SC_PAGESIZE)))
}

struct Memory: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "memory", abstract: "Print resident bytes per idle activation over 100,000 counters.")

    @Option var count = 100_000

    func run() async throws {
        let directory = temporaryDirectory("memory")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let node = try await PlexNode.start(
            NodeConfiguration(dataDirectory: directory, secret: benchSecret), transport: .inMemory(InMemoryNetwork()),
            logger: quietLogger()
        ) { $0.registerExamples() }
        // Warm up allocator and code paths, then measure the growth over `count` more activations.
        for i in 0..<1000 { _ = try await node.actor(Counter.self, key: "warm-\(i)").ask(.increment) }
        let before = residentBytes()
        for i in 0..<count { _ = try await node.actor(Counter.self, key: "counter-\(i)").ask(.increment) }
        let after = residentBytes()
        precondition(node.activationCount == count + 1000)
        FileHandle.standardOutput.write(Data("\(Double(after - before) / Double(count))\n".utf8))
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve", abstract: "Run the far node of the cross-node benchmark.")

    @Option var dataDir: String
    @Option(help: "Run over mutual TLS with DIR/ca.pem, DIR/server.pem and DIR/server-key.pem.")
    var tlsDir: String?

    func run() async throws {
        var configuration = NodeConfiguration(
            nodeID: try NodeID("server"), dataDirectory: dataDir, clusterName: "bench", secret: benchSecret)
        configuration.tls = try tlsDir.map { try benchTLS($0, "server") }
        let node = try await PlexNode.start(configuration, logger: quietLogger()) { $0.registerExamples() }
        let line =
            "{\"event\":\"ready\",\"node_id\":\"\(node.nodeID)\",\"address\":\"\(node.address)\","
            + "\"incarnation\":\(node.incarnation),\"pid\":\(getpid())}\n"
        FileHandle.standardOutput.write(Data(line.utf8))
        while true { try await Task.sleep(for: .seconds(3600)) }
    }
}

func Bench_seconds(_ d: Duration) -> Double { seconds(d) }

final class LatencyBox: @unchecked Sendable {
    // Guarded by `lock`.
    private var samples: [Double] = []
    private let lock = NSLock()
    func add(_ sample: Double) { lock.lock(); samples.append(sample); lock.unlock() }
    func percentile(_ p: Double) -> Double {
        lock.lock()
        defer { lock.unlock() }
        let sorted = samples.sorted()
        return sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))]
    }
}

final class Counter_box: @unchecked Sendable {
    // Guarded by `lock`.
    private var count = 0
    private let lock = NSLock()
    func add() { lock.lock(); count += 1; lock.unlock() }
    var value: Int { lock.lock(); defer { lock.unlock() }; return count }
}

/// Two in-process nodes over loopback TCP and `count` sequential calls between them: a repeatable
/// workload for `valgrind --tool=callgrind` (instructions per call, independent of machine noise).
struct ProfileLoop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile-loop",
        abstract:
            "A fixed number of cross-node calls between two in-process nodes, from one caller or several (each on its own actor)."
    )

    @Option var count = 2000
    @Option(help: "Callers, each making count / callers calls.") var callers = 1

    func run() async throws {
        let a = try await PlexNode.start(
            NodeConfiguration(
                nodeID: try NodeID("a"), dataDirectory: temporaryDirectory("a"), clusterName: "p", secret: benchSecret),
            logger: quietLogger()
        ) { $0.registerExamples() }
        let b = try await PlexNode.start(
            NodeConfiguration(
                nodeID: try NodeID("b"), seeds: [a.address], dataDirectory: temporaryDirectory("b"), clusterName: "p",
                secret: benchSecret),
            logger: quietLogger()
        ) { $0.registerExamples() }
        var key = 0
        while a.owner(of: ActorID(typeName: Counter.typeName, key: "p\(key)")) != b.nodeID { key += 1 }
        let ref = a.actor(Counter.self, key: "p\(key)")
        _ = try await ref.ask(.get)
        let clock = ContinuousClock()
        let start = clock.now
        let (count, callers) = (self.count, self.callers)
        // Child tasks inherit the executor preference.
        try await withTaskExecutorPreference(a.taskExecutor) {
            try await withThrowingTaskGroup(of: Void.self) { group in
                var next = key + 1
                for caller in 0..<callers {
                    var target = ref
                    if caller > 0 {
                        while a.owner(of: ActorID(typeName: Counter.typeName, key: "p\(next)")) != b.nodeID {
                            next += 1
                        }
                        target = a.actor(Counter.self, key: "p\(next)")
                        next += 1
                    }
                    group.addTask { [target] in
                        for _ in 0..<(count / callers) { _ = try await target.ask(.increment) }
                    }
                }
                try await group.waitForAll()
            }
        }
        let elapsed = clock.now - start
        report("profile_loop_calls", Double(count), "calls")
        report("profile_loop_mean", Bench_seconds(elapsed) / Double(count) * 1e6, "us")
        await b.shutdown()
        await a.shutdown()
    }
}
