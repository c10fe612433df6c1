import ArgumentParser
import Foundation
import Logging
import PlexExamples
import PlexGateway
import PlexSpaces
import Prometheus
import ServiceLifecycle
import Synchronization

/// How the node and its gateway, two services of one group, meet: the node once it started, the gateway's port
/// once it listens. Each stream ends empty if its side fails (or the group is cancelled) first.
struct NodeStartup: Sendable {
    let nodes: AsyncStream<PlexNode>
    let started: AsyncStream<PlexNode>.Continuation
    let ports: AsyncStream<Int>
    let bound: AsyncStream<Int>.Continuation

    init() {
        (nodes, started) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
        (ports, bound) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }
}

/// Runs a node inside a `ServiceGroup`: starts it, prints the ready line (once the gateway listens, if there is
/// one), and leaves on graceful shutdown.
struct NodeService: Service {
    let configuration: NodeConfiguration
    /// The gateway's host, when a ``GatewayService`` runs beside this one.
    let gatewayHost: String?
    let startup: NodeStartup
    let logger: Logger

    func run() async throws {
        let node: PlexNode
        do {
            defer { startup.started.finish() }
            node = try await PlexNode.start(configuration, logger: logger) { $0.registerExamples() }
            startup.started.yield(node)
        } catch let error as NodeError where error.code == .removed {
            FileHandle.standardError.write(Data("plex: \(error.message)\n".utf8))
            throw ExitCode(3)
        }
        var http: String?
        if let gatewayHost {
            var ports = startup.ports.makeAsyncIterator()
            guard let port = await ports.next() else {
                // The gateway did not start (its error ends the group), or the group is stopping.
                await node.leave()
                return
            }
            http = "\(gatewayHost):\(port)"
        }
        try printReadyLine(node, http: http)
        // Stop on SIGTERM/SIGINT (the service group's graceful shutdown) or when an operator stopped the node.
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await gracefulShutdown() }
            group.addTask { await node.waitUntilStopped() }
            await group.next()
            logger.info("leaving the cluster")
            await node.leave()  // a no-op if an operator's stop already did; ends waitUntilStopped
            group.cancelAll()  // ends gracefulShutdown()
        }
        if let removed = node.stoppedBecause {
            FileHandle.standardError.write(Data("plex: \(removed.message)\n".utf8))
            throw ExitCode(3)
        }
    }

    /// One JSON line on stdout that scripts wait for: the node has joined and listens.
    private func printReadyLine(_ node: PlexNode, http: String?) throws {
        var ready: [String: Any] = [
            "event": "ready", "node_id": node.nodeID.rawValue, "address": node.address.description,
            "incarnation": node.incarnation, "pid": Int(ProcessInfo.processInfo.processIdentifier),
            "joined": node.isJoined, "cluster_id": node.clusterID ?? "",
            "advertised": node.advertisedAddress.description,
        ]
        if let http { ready["http"] = http }
        let line = try JSONSerialization.data(withJSONObject: ready, options: [.sortedKeys])
        FileHandle.standardOutput.write(line + Data("\n".utf8))
    }
}

/// The node's HTTP gateway, once the node has started; stops gracefully with the group.
struct GatewayService: Service {
    /// How long a graceful stop waits for requests in progress.
    static let drain = Duration.seconds(5)

    let configuration: GatewayConfiguration
    let metrics: PrometheusCollectorRegistry
    let startup: NodeStartup

    func run() async throws {
        defer { startup.bound.finish() }
        var nodes = startup.nodes.makeAsyncIterator()
        guard let node = await nodes.next() else {
            // The node did not start: its error ends the group (and its exit code must win), so wait for that.
            try? await gracefulShutdown()
            return
        }
        let gateway = try Gateway(
            node: node, configuration: configuration, metrics: metrics, logger: Logger(label: "plex.http"))
        let listening = Mutex(false)
        let application = gateway.application(onRunning: { port in
            listening.withLock { $0 = true }
            startup.bound.yield(port)
        })
        do {
            // A graceful stop lets requests in progress finish, up to `Self.drain`; then they are cut, so that a
            // long poll (a workflow result with wait_ms) cannot keep the node from leaving the cluster.
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { try await application.run() }
                group.addTask {
                    try await gracefulShutdown()
                    try await Task.sleep(for: Self.drain)
                }
                defer { group.cancelAll() }
                try await group.next()
            }
        } catch is CancellationError {
            return
        } catch  where !listening.withLock({ $0 }) {
            throw ConfigurationFailure(
                message: "http_listen: cannot listen on \(configuration.host):\(configuration.port): \(error)")
        }
    }
}
