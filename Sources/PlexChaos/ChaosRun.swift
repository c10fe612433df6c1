internal import Foundation
internal import PlexSpaces
internal import PlexTestKit
internal import Synchronization

/// Why a chaos run could not start or judge (as opposed to a run that found lost, doubled or forked deposits).
public struct ChaosSetupFailure: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

/// What a chaos run found.
public struct ChaosOutcome: Sendable {
    public var audit: ChaosAudit
    /// Faults injected.
    public var faults: Int
    /// Wall-clock seconds the run took, end checks included.
    public var seconds: Int
    /// The run's one line.
    public var summary: String { audit.summary(seconds: seconds, faults: faults) }
}

/// A chaos run: real `plex node` processes under a load of idempotent deposits, faults drawn from a seed,
/// then every fault healed, every unacknowledged key retried to completion, and the ledgers audited.
public final class ChaosRun: Sendable {
    let configuration: ChaosConfiguration
    let log: ChaosLog
    let book = SharedBook()
    let cluster: ChaosCluster
    let callers: [NodeCaller]
    /// Set when the load must stop.
    let stopping = Atomic<Bool>(false)
    /// Faults injected, by kind, and what each `plex cluster remove` attempt came to.
    let record = Mutex<(faults: [FaultKind: Int], removals: [String])>(([:], []))
    /// The workflows started under the faults.
    let workflows: WorkflowLoad

    /// Prepares a run: checks the binary, picks addresses, starts the proxies if the nodes can use them.
    /// - Throws: ``ChaosSetupFailure`` when the binary is missing or a partition is asked for that the binary
    ///   cannot take part in.
    public init(configuration: ChaosConfiguration) async throws {
        var configuration = configuration
        log = ChaosLog(enabled: configuration.logsProgress)
        guard FileManager.default.isExecutableFile(atPath: configuration.plexBinary) else {
            throw ChaosSetupFailure("no executable plex binary at \(configuration.plexBinary)")
        }
        guard configuration.nodes >= 2, !configuration.faults.isEmpty else {
            throw ChaosSetupFailure("a chaos run needs at least 2 nodes and one kind of fault")
        }
        let advertises = try await Self.nodesCanAdvertise(configuration.plexBinary)
        let log = self.log
        if configuration.faults.contains(.partition) && !advertises {
            log(
                "partition faults are skipped: `plex node` has no --advertise option, so a node cannot tell its peers "
                    + "to reach it through a proxy (it advertises the address it binds, and peers dial that)")
            configuration.faults.removeAll { $0 == .partition }
            guard !configuration.faults.isEmpty else {
                throw ChaosSetupFailure("only partition faults were asked for, and this plex cannot take part in them")
            }
        }
        self.configuration = configuration
        workflows = WorkflowLoad(directory: configuration.directory)
        try FileManager.default.createDirectory(atPath: configuration.directory, withIntermediateDirectories: true)
        cluster = try ChaosCluster(configuration: configuration, log: log, usesProxies: advertises)
        callers = cluster.addresses.map {
            NodeCaller(address: $0, clusterName: configuration.clusterName, secret: configuration.secret)
        }
    }

    /// Whether `plex node` takes `--advertise` (an address for peers other than the one it binds).
    static func nodesCanAdvertise(_ binary: String) async throws -> Bool {
        let help = try NodeProcess.launch(binary, ["node", "run", "--help"])
        _ = try await help.waitForExit(within: .seconds(20))
        return help.standardOutput.contains("--advertise")
    }

    /// Runs the load and the faults for the configured duration, heals, completes and audits.
    /// - Throws: ``ChaosSetupFailure`` when the cluster never formed.
    public func run() async throws -> ChaosOutcome {
        let started = ContinuousClock.now
        log(
            "seed \(configuration.seed), \(configuration.nodes) nodes, faults \(configuration.faults.map(\.rawValue)), "
                + "\(configuration.duration) of load, data in \(configuration.directory)")
        for index in 0..<configuration.nodes { await cluster.launch(index) }
        guard await cluster.waitUntilAllReady(), await waitUntilFormed(within: .seconds(60)) else {
            await cluster.finish()
            throw ChaosSetupFailure("the cluster did not form; logs in \(configuration.directory)/logs")
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.runCallers() }
            group.addTask {
                await self.workflows.run(callers: self.callers) { self.stopping.load(ordering: .relaxed) }
            }
            group.addTask { await self.reportProgress() }
            group.addTask {
                await self.runFaults()
                self.stopping.store(true, ordering: .relaxed)
            }
        }
        let injected = record.withLock { $0.faults.values.reduce(0, +) }
        log(
            "load stopped: \(book.snapshot.acknowledgedUnderLoad) of \(book.snapshot.deposits.count) deposits "
                + "acknowledged under load, \(book.failedCalls) calls failed; faults \(describeFaults())")
        let audit = try await settle()
        let seconds = Int((ContinuousClock.now - started).milliseconds / 1000)
        return ChaosOutcome(audit: audit, faults: injected, seconds: seconds)
    }

    /// Heals everything, completes every unacknowledged key, reads every ledger through every node, stops
    /// the nodes, reads their journals and judges.
    private func settle() async throws -> ChaosAudit {
        let clock = ContinuousClock()
        let deadline = clock.now + configuration.settle
        await cluster.healAll()
        await cluster.waitUntilAllReady(within: .seconds(30))
        // Half of what is left at most: the keys must be completed and the ledgers read in the rest.
        if await !waitUntilFormed(within: max(.seconds(5), (deadline - clock.now) / 2)) {
            log("the nodes do not all see each other up; completing and reading anyway")
        }
        await completePending(until: deadline)
        let workflowVerdict = await workflows.settle(callers: callers, until: deadline, log: log)
        var observations: [String: LedgerObservation] = [:]
        for ledger in configuration.ledgerKeys {
            observations[ledger] = LedgerObservation(readings: await readings(of: ledger, until: deadline))
        }
        for caller in callers { await caller.close() }
        await cluster.finish()
        var directories: [String: String] = [:]
        for index in 0..<configuration.nodes { directories[cluster.ids[index]] = cluster.dataDirectory(index) }
        let inspection = try await JournalInspection.read(
            dataDirectories: directories, copies: "\(configuration.directory)/inspected")
        for (ledger, journals) in inspection.held { observations[ledger, default: .init()].journals = journals }
        for (ledger, copies) in inspection.keptAside { observations[ledger, default: .init()].keptAside = copies }
        let removals = record.withLock { $0.removals }
        for removal in removals { log("plex cluster remove: \(removal)") }
        let audit = ChaosAudit(book: book.snapshot, observations: observations, workflows: workflowVerdict)
        for finding in audit.findings { log(finding) }
        return audit
    }

    /// Waits until every node sees every node up.
    func waitUntilFormed(within: Duration) async -> Bool {
        let count = configuration.nodes
        do {
            try await eventually("every node sees \(count) members up", within: within, poll: .milliseconds(200)) {
                for caller in self.callers {
                    guard let status = await caller.status(),
                        status.members.filter({ $0.state == "up" }).count == count
                    else { return false }
                }
                return true
            }
            log("every node sees \(count) members up")
            return true
        } catch {
            return false
        }
    }

    func describeFaults() -> String {
        let faults = record.withLock { $0.faults }
        return FaultKind.allCases.compactMap { kind in faults[kind].map { "\(kind)=\($0)" } }.joined(separator: " ")
    }

    private func reportProgress() async {
        var reported = ContinuousClock.now
        while !stopping.load(ordering: .relaxed) {
            try? await Task.sleep(for: .milliseconds(200))
            guard ContinuousClock.now - reported >= .seconds(10) else { continue }
            reported = ContinuousClock.now
            let snapshot = book.snapshot
            log(
                "progress: \(snapshot.acknowledgedCount) acknowledged, \(snapshot.pending.count) pending, "
                    + "\(book.failedCalls) calls failed; faults \(describeFaults())")
        }
    }
}
