internal import FoundationEssentials
internal import Logging
public import PlexSpaces
internal import Synchronization

/// Which transport an in-process cluster uses.
public enum TestTransport: String, Sendable, CaseIterable, CustomStringConvertible {
    /// The in-memory network, with fault injection.
    case inMemory
    /// Real TCP on 127.0.0.1, ports picked by the system.
    case loopbackTCP

    public var description: String { rawValue }
}

/// Several ``PlexNode``s in one process, each with its own temporary data directory.
public final class TestCluster: Sendable {
    /// The transport the nodes use.
    public let transport: TestTransport
    /// The in-memory network (for `.inMemory`), for partitions, drops and delays.
    public let network: InMemoryNetwork
    /// Captured logs of every node.
    public let logs: LogCapture
    let directory: String
    let setup: @Sendable (inout NodeConfiguration) -> Void
    let register: @Sendable (PlexNode) -> Void
    private let slots: Mutex<[(node: PlexNode?, configuration: NodeConfiguration)]>

    init(
        transport: TestTransport, directory: String, logs: LogCapture,
        setup: @escaping @Sendable (inout NodeConfiguration) -> Void, register: @escaping @Sendable (PlexNode) -> Void
    ) {
        self.transport = transport
        self.network = InMemoryNetwork()
        self.logs = logs
        self.directory = directory
        self.setup = setup
        self.register = register
        self.slots = Mutex([])
    }

    /// The running nodes, by index (a stopped node's slot is skipped).
    public var nodes: [PlexNode] { slots.withLock { $0.compactMap(\.node) } }

    /// The node in slot `index`; fails the test if it is stopped.
    public func node(_ index: Int) -> PlexNode {
        slots.withLock { $0[index].node! }
    }

    /// The configuration of a test node: short heartbeats, and a failure detector that judges a silent peer
    /// after 1.5 s (generous enough for a 2-core CI machine running tests in parallel).
    public static func configuration(directory: String, seeds: [PeerAddress]) -> NodeConfiguration {
        NodeConfiguration(
            listenAddress: PeerAddress(host: "127.0.0.1", port: 0), seeds: seeds, dataDirectory: directory,
            clusterName: "test", secret: Array("test-secret-0123456789".utf8),
            membership: MembershipConfiguration(
                heartbeatInterval: .milliseconds(50), unreachableAfter: .milliseconds(1500),
                maximumReconnectBackoff: .milliseconds(200), joinTimeout: .seconds(3)))
    }

    /// Starts one more node that joins through the first.
    @discardableResult
    public func addNode() async throws -> PlexNode {
        let index = slots.withLock { $0.count }
        let seeds = slots.withLock { slots in slots.first?.node.map { [$0.address] } ?? [] }
        var configuration = Self.configuration(directory: "\(directory)/node-\(index)", seeds: seeds)
        configuration.nodeID = try NodeID("node-\(index)")
        setup(&configuration)
        let (node, started) = try await start(configuration, index: index)
        slots.withLock { $0.append((node, started)) }
        return node
    }

    /// Starts a node; the returned configuration has the address it bound, so a restart reuses it.
    private func start(_ configuration: NodeConfiguration, index: Int) async throws -> (PlexNode, NodeConfiguration) {
        let choice: TransportChoice = transport == .inMemory ? .inMemory(network) : .tcp
        let node = try await PlexNode.start(
            configuration, transport: choice, logger: logs.logger(label: "node-\(index)"), setup: register)
        var started = configuration
        started.listenAddress = node.address
        return (node, started)
    }

    /// Stops node `index` as `kill -9` would: no leave, no deactivation hooks, no checkpoints, and its journal
    /// abandoned mid-flight (queued writes dropped, nothing filed, write-ahead logs not checkpointed), so
    /// ``restart(_:seedFrom:)`` recovers from what a crash leaves on disk.
    public func crash(_ index: Int) async {
        guard let node = slots.withLock({ $0[index].node }) else { return }
        slots.withLock { $0[index].node = nil }
        await node.halt()
    }

    /// Stops node `index` cleanly without leaving (``PlexNode/shutdown()``): its activations checkpoint and its
    /// journal is filed and closed. The clean counterpart of ``crash(_:)``; ``restart(_:seedFrom:)`` follows
    /// either.
    public func stop(_ index: Int) async {
        guard let node = slots.withLock({ $0[index].node }) else { return }
        slots.withLock { $0[index].node = nil }
        await node.shutdown()
    }

    /// Leaves gracefully with node `index`; returns how many durable actors it handed off and could not.
    @discardableResult
    public func leave(_ index: Int) async -> (moved: Int, failed: Int) {
        guard let node = slots.withLock({ $0[index].node }) else { return (0, 0) }
        slots.withLock { $0[index].node = nil }
        return await node.leave()
    }

    /// Starts node `index` again on its data directory and address (a new incarnation).
    @discardableResult
    public func restart(_ index: Int, seedFrom seedIndex: Int? = nil) async throws -> PlexNode {
        var configuration = slots.withLock { $0[index].configuration }
        if let seedIndex, let seed = slots.withLock({ $0[seedIndex].node }) { configuration.seeds = [seed.address] }
        let (node, started) = try await start(configuration, index: index)
        slots.withLock { $0[index] = (node, started) }
        return node
    }

    /// Waits until `observer` sees `node` (at its current incarnation) as reachable and has a connection
    /// to it, so the next call goes through without a retry.
    public func waitUntil(_ observer: PlexNode, isConnectedTo node: PlexNode, within: Duration = .seconds(10))
        async throws
    {
        try await eventually("\(observer.nodeID) is connected to \(node.nodeID)#\(node.incarnation)", within: within) {
            observer.connectedMembers.contains(node.nodeID)
                && observer.members.contains {
                    $0.nodeID == node.nodeID && $0.incarnation == node.incarnation && $0.reachable
                }
        }
    }

    /// Waits until every running node sees every running node as up and reachable, and is connected to it.
    public func waitForConvergence(within: Duration = .seconds(10)) async throws {
        let ids = Set(nodes.map(\.nodeID))
        try await eventually("all nodes see and connect to \(ids.sorted().map(\.rawValue))", within: within) {
            nodes.allSatisfy { node in
                let up = Set(node.members.filter { $0.status == .up && $0.reachable }.map(\.nodeID))
                return ids.isSubset(of: up) && ids.subtracting([node.nodeID]).isSubset(of: node.connectedMembers)
            }
        }
    }

    func shutdownAll() async {
        for node in nodes { await node.shutdown() }
    }
}

/// Runs `body` against a fresh cluster of `nodes` nodes, prints the captured logs only if it throws, and
/// stops every node afterwards.
///
/// - Parameters:
///   - nodes: How many nodes to start (they join through node 0).
///   - transport: In-memory or loopback TCP; the same body should pass on both.
///   - setup: Adjusts each node's configuration.
///   - register: Registers actor types on each node (also after restarts).
public func withTestCluster<T: Sendable>(
    nodes count: Int, transport: TestTransport,
    setup: @escaping @Sendable (inout NodeConfiguration) -> Void = { _ in },
    register: @escaping @Sendable (PlexNode) -> Void,
    _ body: (TestCluster) async throws -> T
) async throws -> T {
    let directory = FileManager.default.temporaryDirectory.path + "/plex-test-\(UInt64.random(in: 0...UInt64.max))"
    let logs = LogCapture()
    let cluster = TestCluster(transport: transport, directory: directory, logs: logs, setup: setup, register: register)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    do {
        for _ in 0..<count { try await cluster.addNode() }
        try await cluster.waitForConvergence()
        let result = try await body(cluster)
        await cluster.shutdownAll()
        return result
    } catch {
        print("---- test cluster (\(transport)) failed: \(error); captured logs follow ----")
        logs.dump()
        await cluster.shutdownAll()
        throw error
    }
}
