import Foundation
import PlexCertificates
import PlexExamples
import PlexSpaces
import PlexTestKit

/// The TLS files of `name` in `directory` (as ``All/tls(window:)`` writes them).
func benchTLS(_ directory: String, _ name: String) throws -> TransportTLS {
    try TransportTLS(
        files: .init(
            authority: directory + "/ca.pem", certificate: "\(directory)/\(name).pem",
            key: "\(directory)/\(name)-key.pem"))
}

extension All {
    /// What mutual TLS costs across nodes: the same figures as `cross` (sequential p50, 64 callers) and 64 callers
    /// of durable ledgers, plain and over TLS, alternating in one sitting; medians, and the cost of TLS.
    func tls(window: Duration) async throws {
        let certificates = temporaryDirectory("tls-certs")
        defer { try? FileManager.default.removeItem(atPath: certificates) }
        let files = CertificateFiles(directory: certificates)
        let authority = try files.initialize(name: "bench")
        try files.store(try authority.issue(for: .node("server")))
        try files.store(try authority.issue(for: .node("caller")))
        var plain: [CrossFigures] = []
        var secure: [CrossFigures] = []
        for _ in 0..<runs {
            plain.append(try await crossFigures(tlsDirectory: nil, window: window))
            secure.append(try await crossFigures(tlsDirectory: certificates, window: window))
        }
        func both(_ name: String, _ unit: String, _ figure: (CrossFigures) -> Double) -> (Double, Double) {
            let (p, s) = (median(plain.map(figure)), median(secure.map(figure)))
            report("tls_plain_\(name)", p, unit)
            report("tls_\(name)", s, unit)
            return (p, s)
        }
        let (plainP50, tlsP50) = both("cross_node_ask_sequential_p50", "us", \.sequentialP50)
        report("tls_cross_node_ask_sequential_p50_added", tlsP50 - plainP50, "us")
        let (plainRate, tlsRate) = both("cross_node_ask_64_callers", "calls/s", \.callers64)
        report("tls_cross_node_ask_64_callers_cost", (1 - tlsRate / plainRate) * 100, "%")
        let (plainDurable, tlsDurable) = both("cross_node_durable_ask_64_callers", "calls/s", \.durable64)
        report("tls_cross_node_durable_ask_64_callers_cost", (1 - tlsDurable / plainDurable) * 100, "%")
    }

    struct CrossFigures {
        var sequentialP50: Double
        var callers64: Double
        var durable64: Double
    }

    /// One far node in its own process and a calling node here, over TLS when `tlsDirectory` is given.
    func crossFigures(tlsDirectory: String?, window: Duration) async throws -> CrossFigures {
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath().path
        let serverDirectory = temporaryDirectory("tls-server")
        let server = try NodeProcess.launch(
            executable, ["serve", "--data-dir", serverDirectory] + (tlsDirectory.map { ["--tls-dir", $0] } ?? []))
        defer {
            server.terminate()
            try? FileManager.default.removeItem(atPath: serverDirectory)
        }
        let ready = try await server.waitUntilReady()
        let directory = temporaryDirectory("tls-caller")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        var configuration = NodeConfiguration(
            nodeID: try NodeID("caller"), seeds: [PeerAddress(parsing: ready.address)!], dataDirectory: directory,
            clusterName: "bench", secret: benchSecret)
        configuration.tls = try tlsDirectory.map { try benchTLS($0, "caller") }
        let node = try await PlexNode.start(configuration, logger: quietLogger()) { $0.registerExamples() }
        let remote = try NodeID(ready.node_id)
        func remoteKeys(_ type: String, _ count: Int) -> [String] {
            var keys: [String] = []
            var i = 0
            while keys.count < count {
                if node.owner(of: ActorID(typeName: type, key: "x\(i)")) == remote { keys.append("x\(i)") }
                i += 1
            }
            return keys
        }
        let counters = remoteKeys(Counter.typeName, 64).map { node.actor(Counter.self, key: $0) }
        let ledgers = remoteKeys(Ledger.typeName, 64).map { node.actor(Ledger.self, key: $0) }
        for ref in counters { _ = try await ref.ask(.get) }
        for ref in ledgers { _ = try await ref.ask(.deposit(amount: 1)) }

        let clock = ContinuousClock()
        let p50 = try await withTaskExecutorPreference(node.taskExecutor) {
            var samples: [Double] = []
            let start = clock.now
            while clock.now - start < window {
                let t0 = clock.now
                _ = try await counters[0].ask(.increment)
                samples.append(Bench_seconds(clock.now - t0) * 1e6)
            }
            samples.sort()
            return samples[samples.count / 2]
        }
        let rate = try await throughput(callers: 64, duration: window, executor: node.taskExecutor) { caller, _ in
            _ = try await counters[caller].ask(.increment)
        }
        let durable = try await throughput(callers: 64, duration: window, executor: node.taskExecutor) { caller, _ in
            _ = try await ledgers[caller].ask(.deposit(amount: 1))
        }
        await node.shutdown()
        return CrossFigures(sequentialP50: p50, callers64: rate, durable64: durable)
    }
}
