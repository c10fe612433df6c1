internal import Foundation
public import PlexSpaces
internal import PlexTestKit

/// The `plex node` processes of a chaos run on loopback, each with a fresh data directory and a fixed
/// address, and (when the nodes can advertise another address than the one they bind) one proxy per node
/// that its peers reach it through.
///
/// Every node lists every node as a seed, as `cluster/local/` does. Callers connect to the nodes directly,
/// so a partition cuts only links between nodes. Processes are signalled only by their own PIDs.
public actor ChaosCluster {
    struct Slot {
        let id: String
        /// Where the node binds; callers connect here.
        let listen: PeerAddress
        /// What the other nodes dial to reach this one, if its links go through a proxy.
        let proxy: TCPProxy?
        let dataDirectory: String
        var process: NodeProcess?
        var starts = 0
        var suspended = false
    }

    let configuration: ChaosConfiguration
    let log: ChaosLog
    /// Whether the nodes' links go through proxies (so partitions can be injected).
    public nonisolated let usesProxies: Bool
    /// The addresses callers use, by node index.
    public nonisolated let addresses: [PeerAddress]
    /// The node ids, by index.
    public nonisolated let ids: [String]
    private var slots: [Slot]

    /// Picks an address for every node and, with `usesProxies`, starts a proxy in front of each; starts no node.
    /// - Throws: ``TCPProxy/Failure`` when no port can be had.
    public init(configuration: ChaosConfiguration, log: ChaosLog, usesProxies: Bool) throws {
        self.configuration = configuration
        self.log = log
        self.usesProxies = usesProxies
        var slots: [Slot] = []
        for index in 0..<configuration.nodes {
            let listen = PeerAddress(host: "127.0.0.1", port: try LoopbackPort.unused())
            let proxy = usesProxies ? try TCPProxy(target: listen, identify: HelloDialer.identify) : nil
            slots.append(
                Slot(
                    id: ChaosConfiguration.nodeID(index), listen: listen, proxy: proxy,
                    dataDirectory: "\(configuration.directory)/\(ChaosConfiguration.nodeID(index))"))
        }
        self.slots = slots
        self.addresses = slots.map(\.listen)
        self.ids = slots.map(\.id)
    }

    /// The seeds every node lists: what the nodes reach each other at.
    var seeds: [PeerAddress] { slots.map { $0.proxy?.address ?? $0.listen } }

    private func arguments(_ index: Int) -> [String] {
        let slot = slots[index]
        var arguments = [
            "node", "--node-id", slot.id, "--listen", slot.listen.description, "--data-dir", slot.dataDirectory,
            "--cluster-name", configuration.clusterName, "--log-level", "info",
            "--heartbeat-ms", String(configuration.heartbeat.milliseconds),
            "--unreachable-after-ms", String(configuration.unreachableAfter.milliseconds),
        ]
        for seed in seeds { arguments += ["--seed", seed.description] }
        if let proxy = slot.proxy { arguments += ["--advertise", proxy.address.description] }
        // Odd nodes spread their journal over two files (the default is one), so that faults meet both layouts.
        if index % 2 == 1 { arguments += ["--journal-shards", "2"] }
        return arguments
    }

    /// Starts node `index` unless it runs; does not wait for its ready line.
    public func launch(_ index: Int) {
        if let process = slots[index].process, process.isRunning { return }
        saveLog(index)
        do {
            let process = try NodeProcess.launch(
                configuration.plexBinary, arguments(index), environment: ["PLEX_CLUSTER_SECRET": configuration.secret])
            slots[index].process = process
            slots[index].starts += 1
            slots[index].suspended = false
            log("\(slots[index].id): started (pid \(process.pid), start \(slots[index].starts))")
        } catch {
            log("\(slots[index].id): cannot start: \(error)")
        }
    }

    /// Waits for node `index`'s ready line; `false` (logged) if it exits or does not print it in time.
    @discardableResult
    public func waitUntilReady(_ index: Int, within: Duration = .seconds(30)) async -> Bool {
        guard let process = slots[index].process else { return false }
        do {
            let ready = try await process.waitUntilReady(within: within)
            log("\(slots[index].id): ready (incarnation \(ready.incarnation))")
            return true
        } catch {
            let lastLines = process.standardError.split(separator: "\n").suffix(3).joined(separator: " | ")
            log("\(slots[index].id): not ready: \(error); last log lines: \(lastLines)")
            return false
        }
    }

    /// Waits for the ready lines of every node, concurrently; whether all came.
    @discardableResult
    public func waitUntilAllReady(within: Duration = .seconds(60)) async -> Bool {
        let indices = slots.indices
        return await withTaskGroup(of: Bool.self) { group in
            for index in indices { group.addTask { await self.waitUntilReady(index, within: within) } }
            var all = true
            for await ready in group { all = all && ready }
            return all
        }
    }

    /// Whether node `index` runs (a stopped process runs).
    public func isRunning(_ index: Int) -> Bool { slots[index].process?.isRunning ?? false }

    /// `kill -9` of node `index`, by its PID; returns once it exited.
    public func kill(_ index: Int) async {
        guard let process = slots[index].process, process.isRunning else { return }
        process.kill9()
        let status = try? await process.waitForExit(within: .seconds(10))
        slots[index].suspended = false
        log("\(slots[index].id): killed (pid \(process.pid), status \(status.map(String.init) ?? "?"))")
    }

    /// `kill -9` of every node.
    public func killAll() async {
        for index in slots.indices { await kill(index) }
    }

    /// Deletes the data directory of node `index`, which must be down (sabotage: see ``FaultKind/wipe``).
    public func wipe(_ index: Int) {
        precondition(!isRunning(index))
        try? FileManager.default.removeItem(atPath: slots[index].dataDirectory)
        log("\(slots[index].id): data directory deleted")
    }

    /// SIGSTOP of node `index`.
    public func suspend(_ index: Int) {
        guard let process = slots[index].process, process.isRunning else { return }
        process.suspend()
        slots[index].suspended = true
        log("\(slots[index].id): stopped (SIGSTOP)")
    }

    /// SIGCONT of node `index`, if it was stopped.
    public func resume(_ index: Int) {
        guard slots[index].suspended, let process = slots[index].process else { return }
        process.resume()
        slots[index].suspended = false
        log("\(slots[index].id): continued (SIGCONT)")
    }

    /// Cuts the links of `shape` through the proxies.
    /// - Precondition: the cluster uses proxies.
    public func cut(_ shape: PartitionShape, blackhole: Bool) {
        precondition(usesProxies)
        let mode: TCPProxy.CutMode = blackhole ? .blackhole : .drop
        switch shape {
        case .isolate(let node):
            slots[node].proxy!.cut(mode)
            for other in slots.indices where other != node { slots[other].proxy!.cut(from: slots[node].id, mode) }
        case .split(let a, let b):
            slots[a].proxy!.cut(from: slots[b].id, mode)
            slots[b].proxy!.cut(from: slots[a].id, mode)
        }
        log("partition: \(shape) (\(mode))")
    }

    /// Heals every cut.
    public func healLinks() {
        guard usesProxies, slots.contains(where: { $0.proxy!.isCut }) else { return }
        for slot in slots { slot.proxy!.heal() }
        log("partition healed")
    }

    /// Heals every fault: links healed, stopped nodes continued, nodes that are down started.
    public func healAll() {
        healLinks()
        for index in slots.indices {
            resume(index)
            launch(index)
        }
    }

    /// Runs `plex cluster remove <member> --node <through>` and says what came of it: `refused`, `done`, or
    /// `failed` with the reason.
    public func remove(_ member: Int, through: Int) async -> String {
        let arguments = [
            "cluster", "remove", slots[member].id, "--node", slots[through].listen.description, "--cluster-name",
            configuration.clusterName, "--timeout", "5",
        ]
        do {
            let process = try NodeProcess.launch(
                configuration.plexBinary, arguments, environment: ["PLEX_CLUSTER_SECRET": configuration.secret])
            let status = try await process.waitForExit(within: .seconds(20))
            let output = (process.standardOutput + process.standardError).trimmingCharacters(
                in: .whitespacesAndNewlines)
            let firstLine = output.split(separator: "\n").first.map(String.init) ?? ""
            if status == 0 && output.contains("removed") { return "done: \(firstLine)" }
            if output.contains("refused") {
                return firstLine.hasPrefix("refused") ? firstLine : "refused: \(firstLine)"
            }
            return "failed (exit \(status)): \(firstLine)"
        } catch {
            return "failed: \(error)"
        }
    }

    /// Kills every node, writes every process's output to the logs directory and stops the proxies.
    public func finish() async {
        await killAll()
        for index in slots.indices { saveLog(index) }
        for slot in slots { slot.proxy?.stop() }
    }

    /// The data directory of node `index`.
    public nonisolated func dataDirectory(_ index: Int) -> String {
        "\(configuration.directory)/\(ChaosConfiguration.nodeID(index))"
    }

    /// Writes the output of node `index`'s current process to `logs/<node>.start-<n>.log`.
    private func saveLog(_ index: Int) {
        guard let process = slots[index].process else { return }
        let directory = "\(configuration.directory)/logs"
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let path = "\(directory)/\(slots[index].id).start-\(slots[index].starts).log"
        let text = process.standardError + "---- stdout ----\n" + process.standardOutput
        _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
    }
}
