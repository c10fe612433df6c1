import ArgumentParser
import Foundation
import Logging
import PlexExamples
import PlexGateway
import PlexSpaces
import Prometheus
import ServiceLifecycle
import Synchronization

/// The ports a node's gateway listens on.
struct GatewayPorts: Sendable {
    var http: Int?
    /// The h2c listener's, if it has one.
    var http2: Int?
}

/// How the node and its gateway, two services of one group, meet: the node once it started, the gateway's ports
/// once it listens. Each stream ends empty if its side fails (or the group is cancelled) first.
struct NodeStartup: Sendable {
    let nodes: AsyncStream<PlexNode>
    let started: AsyncStream<PlexNode>.Continuation
    let ports: AsyncStream<GatewayPorts>
    let bound: AsyncStream<GatewayPorts>.Continuation

    init() {
        (nodes, started) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
        (ports, bound) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }
}

/// Runs a node inside a `ServiceGroup`: starts it, prints the ready line (once the gateway listens, if there is
/// one), and leaves on graceful shutdown.
struct NodeService: Service {
    let configuration: NodeConfiguration
    /// The gateway's settings, when a ``GatewayService`` runs beside this one.
    let gateway: GatewayConfiguration?
    let startup: NodeStartup
    let logger: Logger

    func run() async throws {
        let node: PlexNode
        do {
            defer { startup.started.finish() }
            let keepsRecentCalls = gateway != nil
            node = try await PlexNode.start(configuration, logger: logger) { node in
                node.registerExamples()
                // The dashboard lists slow and failed turns from the node's start (reminders, workflows resuming),
                // not only from when its gateway listens.
                if keepsRecentCalls { node.keepRecentCalls() }
            }
            startup.started.yield(node)
        } catch let error as NodeError where error.code == .removed {
            FileHandle.standardError.write(Data("plex: \(error.message)\n".utf8))
            throw ExitCode(3)
        }
        var http: [String: Any] = [:]
        if let gateway {
            var ports = startup.ports.makeAsyncIterator()
            guard let bound = await ports.next(), let port = bound.http else {
                // The gateway did not start (its error ends the group), or the group is stopping.
                await node.leave()
                return
            }
            http["http"] = "\(gateway.host):\(port)"
            if gateway.tls != nil { http["http_tls"] = true }
            if let listener = gateway.plaintextHTTP2, let port = bound.http2 {
                http["http2"] = "\(listener.host):\(port)"
            }
        }
        if configuration.tls != nil { http["tls"] = true }
        try printReadyLine(node, gateway: http)
        // Stop on SIGTERM/SIGINT (the service group's graceful shutdown) or when an operator stopped the node.
        await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                try? await gracefulShutdown()
                return true
            }
            group.addTask {
                await node.waitUntilStopped()
                return true
            }
            group.addTask {
                await CertificateWatch(tls: configuration.tls, logger: logger).run()
                return false
            }
            while let stop = await group.next(), !stop {}
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
    private func printReadyLine(_ node: PlexNode, gateway: [String: Any]) throws {
        var ready: [String: Any] = [
            "event": "ready", "node_id": node.nodeID.rawValue, "address": node.address.description,
            "incarnation": node.incarnation, "pid": Int(ProcessInfo.processInfo.processIdentifier),
            "joined": node.isJoined, "cluster_id": node.clusterID ?? "",
            "advertised": node.advertisedAddress.description,
        ]
        ready.merge(gateway) { _, new in new }
        let line = try JSONSerialization.data(withJSONObject: ready, options: [.sortedKeys])
        FileHandle.standardOutput.write(line + Data("\n".utf8))
    }
}

/// How the service group names the services in its logs: by what they are, never by their settings, which
/// hold the cluster secret and the gateway's token (swift-service-lifecycle logs a service's description).
extension NodeService: CustomStringConvertible {
    var description: String { "NodeService(\(configuration.nodeID?.rawValue ?? "node"))" }
}

extension GatewayService: CustomStringConvertible {
    var description: String { "GatewayService(\(configuration.host):\(configuration.port))" }
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
        // The ready line waits for every listener; an error before then is a listener that could not start.
        let bound = Mutex(GatewayPorts())
        let listening = Mutex(false)
        let wantsHTTP2 = configuration.plaintextHTTP2 != nil
        @Sendable func record(_ update: (inout GatewayPorts) -> Void) {
            let ports = bound.withLock { ports in
                update(&ports)
                return ports
            }
            if ports.http != nil, ports.http2 != nil || !wantsHTTP2 {
                listening.withLock { $0 = true }
                startup.bound.yield(ports)
            }
        }
        do {
            let main = try gateway.application(onRunning: { port in record { $0.http = port } })
            let http2 = gateway.plaintextHTTP2Application(onRunning: { port in record { $0.http2 = port } })
            // A graceful stop lets requests in progress finish, up to `Self.drain`; then they are cut, so that a
            // long poll (a workflow result with wait_ms) cannot keep the node from leaving the cluster.
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    try await main.run(); return true
                }
                if let http2 {
                    group.addTask {
                        try await http2.run(); return true
                    }
                }
                group.addTask {
                    try await gracefulShutdown()
                    try await Task.sleep(for: Self.drain)
                    return false
                }
                defer { group.cancelAll() }
                var running = http2 == nil ? 1 : 2
                while let server = try await group.next(), server {
                    running -= 1
                    if running == 0 { break }
                }
            }
        } catch is CancellationError {
            return
        } catch let error as GatewayConfigurationError {
            throw ConfigurationFailure(message: error.message)
        } catch  where !listening.withLock({ $0 }) {
            let (key, host, port) =
                bound.withLock({ $0.http }) == nil
                ? ("http_listen", configuration.host, configuration.port)
                : ("http2_listen", configuration.plaintextHTTP2?.host ?? "", configuration.plaintextHTTP2?.port ?? 0)
            throw ConfigurationFailure(message: "\(key): cannot listen on \(host):\(port): \(error)")
        }
    }
}
