public import Logging
public import PlexCore
public import PlexJournal
public import PlexTransport
internal import PlexWire
internal import Synchronization
package import Tracing

/// How a node reaches its peers.
public enum TransportChoice: Sendable {
    /// SwiftNIO TCP (production).
    case tcp
    /// An in-process network (tests).
    case inMemory(InMemoryNetwork)
}

/// A member of a PlexSpaces cluster: hosts virtual actors, routes calls, gossips membership.
///
/// ```swift
/// let node = try await PlexNode.start(configuration)
/// node.register(Counter.self)
/// let n = try await node.actor(Counter.self, key: "c-1").ask(.increment)
/// ```
///
/// The node is the public face and the lifecycle; the work is done by roles it owns, each in a folder of
/// its own: membership (`Membership/`), call dispatch (`Dispatch/`), the activation directory (`Activation/`),
/// handoff (`Handoff/`), reminders (`Reminders/`) and admin commands (`Admin/`).
public final class PlexNode: Sendable {
    /// This node's id.
    public var nodeID: NodeID { runtime.nodeID }
    /// This start's incarnation.
    public var incarnation: Incarnation { runtime.incarnation }
    /// The address the node listens on.
    public var address: PeerAddress { runtime.address }
    /// The address other members dial to reach this node: ``NodeConfiguration/advertisedAddress`` if set
    /// (behind a proxy or NAT), else ``address``.
    public var advertisedAddress: PeerAddress { configuration.advertisedAddress ?? address }
    /// The configuration the node started with.
    public var configuration: NodeConfiguration { runtime.configuration }
    /// This node's journal: durable actors' messages, replies and checkpoints.
    public var journal: Journal { runtime.journal }

    let runtime: NodeRuntime
    let membership: Membership
    let directory: ActivationDirectory
    let handoff: HandoffCoordinator
    let admin: AdminCommands
    let dispatcher: CallDispatcher
    let reminders: ReminderScheduler
    /// The node's own lifecycle state.
    let life: Mutex<Life>

    struct Life {
        /// Why the node stopped on its own, if it did (an operator removed it while it ran).
        var stopReason: NodeError?
        /// Callers of `waitUntilStopped`; `nil` once the node stopped.
        var stopWaiters: [CheckedContinuation<Void, Never>]? = []
        /// Held while the node runs; released (by dropping it) when it stops.
        var dataLock: DataDirectoryLock?
    }

    var logger: Logger { runtime.logger }
    var transport: any Transport { runtime.transport }

    init(runtime: NodeRuntime, storedRing: StoredRing?, delegates: NodeDelegate, lock: DataDirectoryLock) {
        self.runtime = runtime
        self.life = Mutex(Life(dataLock: lock))
        membership = Membership(runtime: runtime, storedRing: storedRing, delegates: delegates)
        directory = ActivationDirectory(runtime: runtime)
        handoff = HandoffCoordinator(runtime: runtime, membership: membership, directory: directory)
        admin = AdminCommands(runtime: runtime, membership: membership, directory: directory)
        dispatcher = CallDispatcher(
            runtime: runtime, membership: membership, directory: directory, handoff: handoff, admin: admin)
        reminders = ReminderScheduler(
            runtime: runtime, membership: membership, directory: directory, dispatcher: dispatcher)
        membership.bind(self)
        directory.bind(host: handoff, router: dispatcher)
        admin.bind(self)
    }

    /// Starts a node: loads its identity and the ring it last knew, listens, and joins its cluster.
    ///
    /// A node whose data directory keeps a ring starts from it: the members it knew are in the ring,
    /// unreachable until heard from, so it serves exactly the actors it owned (see ``StoredRing``). A node with
    /// a new data directory joins through its seeds and never forms a cluster of its own, with one exception
    /// that founds a new cluster: ``NodeConfiguration/bootstrap``, or being the first address in
    /// ``NodeConfiguration/seeds`` (or having no seeds) when no other seed answers within
    /// ``MembershipConfiguration/joinTimeout``. Returns once the node belongs to a cluster, or after the join
    /// timeout while it keeps waiting for a seed (``isJoined`` is `false` then, and calls through it fail with
    /// `nodeUnavailable`).
    ///
    /// - Parameters:
    ///   - configuration: The node's settings.
    ///   - choice: TCP, or an in-memory network for tests.
    ///   - logger: Where the node logs; `node.id` is added to its metadata.
    ///   - setup: Runs before the node takes its first frame: register actor types here.
    /// - Throws: ``NodeError`` with code `invalidConfiguration`, `dataDirectory`, `removed` or `bindFailed`.
    public static func start(
        _ configuration: NodeConfiguration, transport choice: TransportChoice = .tcp,
        logger: Logger = Logger(label: "plex.node"), setup: (PlexNode) -> Void = { _ in }
    ) async throws -> PlexNode {
        try configuration.validate()
        let (nodeID, incarnation, lock) = try NodeIdentityStore.load(
            dataDirectory: configuration.dataDirectory, configured: configuration.nodeID)
        if let notice = RingStore.removalNotice(dataDirectory: configuration.dataDirectory) {
            throw NodeError(
                .removed,
                "\(notice) Removal is for good: this data directory's copies of actors must never serve again (they "
                    + "stay readable with plex journal inspect). To bring the machine back, start it with a new "
                    + "node id and a new data directory.")
        }
        let storedRing = try RingStore.load(dataDirectory: configuration.dataDirectory)
        var logger = logger
        logger[metadataKey: "node.id"] = "\(nodeID)"
        let journal: Journal
        do {
            journal = try await Journal.open(
                path: configuration.dataDirectory + "/journal.sqlite", configuration: configuration.journal)
        } catch let error as JournalError {
            throw NodeError(.dataDirectory, "cannot open the journal: \(error)", cause: error)
        }
        let transport = makeTransport(choice, configuration: configuration, logger: logger)
        let delegates = NodeDelegate()
        let bound: PeerAddress
        do {
            bound = try await transport.bind(configuration.listenAddress, delegate: delegates)
        } catch {
            await journal.close()
            throw NodeError(.bindFailed, "cannot listen on \(configuration.listenAddress)", cause: error)
        }
        let runtime = NodeRuntime(
            nodeID: nodeID, incarnation: incarnation, address: bound, configuration: configuration, logger: logger,
            journal: journal, transport: transport)
        let node = PlexNode(runtime: runtime, storedRing: storedRing, delegates: delegates, lock: lock)
        if let storedRing {
            logger.info(
                "starting from the ring kept in the data directory",
                metadata: ["cluster.id": "\(storedRing.clusterID)", "members": "\(storedRing.members.count)"])
        } else if configuration.bootstrap || configuration.seeds.allSatisfy(node.membership.isOwnAddress) {
            node.membership.foundCluster(reason: configuration.bootstrap ? "bootstrap" : "no seeds")
        }
        // Identity, actor types and the delegate are all in place before the first connection is accepted.
        transport.setLocalIdentity(
            PeerIdentity(
                role: .node, nodeID: nodeID, incarnation: incarnation,
                listenAddress: (configuration.advertisedAddress ?? bound).description))
        setup(node)
        if let refused = node.directory.refusedTypes.first {
            await transport.shutdown()
            await journal.close()
            throw refused
        }
        delegates.bind(node.dispatcher)
        await transport.startAccepting()
        node.startLoops()
        await node.membership.join()
        node.handoff.scheduleRound()
        logger.info("node started", metadata: ["address": "\(bound)", "incarnation": "\(incarnation)"])
        return node
    }

    private static func makeTransport(
        _ choice: TransportChoice, configuration: NodeConfiguration, logger: Logger
    ) -> any Transport {
        let handshake = HandshakeConfiguration(
            clusterName: configuration.clusterName, secret: configuration.secret,
            timeout: configuration.handshakeTimeout, callerSecret: configuration.callerSecret)
        switch choice {
        case .tcp:
            return TCPTransport(
                configuration: .init(
                    handshake: handshake, maximumFrameSize: configuration.maximumFrameSize,
                    maximumConnections: configuration.maximumConnections, tls: configuration.tls),
                logger: logger)
        case .inMemory(let network):
            return InMemoryTransport(
                network: network, handshake: handshake, logger: logger,
                maximumFrameSize: configuration.maximumFrameSize)
        }
    }

    /// Starts gossip and the failure detector, the join loop, deadline sweeps, idle deactivation, reminders and
    /// journal pruning, owned by the node's tasks.
    ///
    /// They run on the transport's I/O executor when it has one, so a global pool kept busy (or blocked) by
    /// application code does not silence heartbeats and make healthy peers look dead.
    private func startLoops() {
        let executor = transport.taskExecutor
        let tasks = runtime.loops
        tasks.start(on: executor) { await self.membership.joinLoop() }
        tasks.start(on: executor) { await self.membership.gossipLoop() }
        tasks.start(on: executor) { await self.membership.sweepLoop() }
        tasks.start(on: executor) { await self.directory.idleLoop() }
        tasks.start(on: executor) { await self.reminders.loop() }
        tasks.start(on: executor) { await self.pruneLoop() }
    }

    // MARK: Actors

    /// Registers an actor type so this node can host it. Every node that may own the type must register it.
    public func register<A: VirtualActor>(_ type: A.Type) {
        register(type) { A() }
    }

    /// Registers an actor type whose instances `make` creates (to hand them dependencies).
    ///
    /// A durable type with ``PlacementStrategy/failover`` placement is refused: it would run on both sides of a
    /// partition and fork its history. ``start(_:transport:logger:setup:)`` then fails with
    /// ``NodeError`` `invalidConfiguration` naming the type (registered later, it is logged and not hosted).
    public func register<A: VirtualActor>(_ type: A.Type, make: @escaping @Sendable () -> A) {
        directory.register(type, make: make)
    }

    /// A reference to the actor of type `A` with `key`; valid on every node.
    public func actor<A: VirtualActor>(_ type: A.Type, key: String) -> ActorRef<A> {
        ActorRef(key: key, router: dispatcher)
    }

    /// Activates `A`/`key` on this node (not where placement would put it) and registers it as `name`
    /// in the gossiped registry, so every node can ``resolve(_:name:)`` it.
    ///
    /// - Throws: ``CallError`` `unknownActorType` when `A` is not registered here.
    @discardableResult
    public func spawn<A: VirtualActor>(_ type: A.Type, key: String, name: String) throws -> ActorRef<A> {
        let entry = try directory.entry(for: type)
        let id = ActorID(typeName: A.typeName, key: key)
        membership.update { $0.register(name: name, actor: id, node: nodeID) }
        _ = directory.activation(for: id, entry: entry)
        membership.broadcastGossip()
        return ActorRef(key: key, router: dispatcher)
    }

    /// The actor registered as `name` anywhere in the cluster, if this node has heard of it.
    public func resolve<A: VirtualActor>(_ type: A.Type, name: String) -> ActorRef<A>? {
        guard let entry = membership.read({ $0.registry[name] }), entry.actor.typeName == A.typeName else {
            return nil
        }
        return ActorRef(key: entry.actor.key, router: dispatcher)
    }

    // MARK: What the node knows

    /// The executor of the I/O thread that carries this node's outgoing calls (TCP only).
    ///
    /// A caller that runs on it (`withTaskExecutorPreference(node.taskExecutor) { … }`) sends and receives
    /// without waking another thread: on a small machine that halves the latency of a sequential remote
    /// call. Code running there must never block.
    public var taskExecutor: (any TaskExecutor)? { transport.taskExecutor }

    /// Traffic counters of the node's transport.
    public var transportStatistics: TransportStatistics { transport.statistics }

    /// The number of live activations on this node.
    public var activationCount: Int { directory.count }

    /// Whether `id` is active on this node right now.
    public func isActive(_ id: ActorID) -> Bool { directory.existing(id) != nil }

    /// The members this node knows, with its own view of their reachability.
    public var members: [MemberRecord] { membership.memberRecords(activations: directory.count) }

    /// Whether this node belongs to a cluster and knows its ring; a node waiting for a seed answers no call.
    public var isJoined: Bool { membership.isJoined }

    /// The id of the cluster this node belongs to (`nil` while it waits to join one).
    public var clusterID: String? { membership.clusterID }

    /// Why the node stopped on its own, if it did: an operator removed it from the cluster while it ran.
    public var stoppedBecause: NodeError? { life.withLock { $0.stopReason } }

    /// The members this node has an open connection to (for its own calls).
    public var connectedMembers: Set<NodeID> {
        Set(membership.allLinks.filter(\.isConnected).map(\.peer))
    }

    /// The node that owns `id` in this node's view (placement over the ring), ignoring named registrations.
    public func owner(of id: ActorID, placement: PlacementStrategy = .pinned) -> NodeID? {
        membership.routing.owner(of: id, placement: placement)?.node
    }

    /// How many messages wait for the live activation of `id` (nil if it is not active): for benchmarks
    /// and diagnostics.
    package func queuedMessages(for id: ActorID) -> Int? {
        directory.queuedMessages(for: id)
    }

    /// Starts keeping ``recentCalls`` (the gateway does, for its dashboard); until then turns are not timed
    /// for them.
    package func keepRecentCalls() {
        runtime.callLog.enable()
    }

    /// This node's slowest turns of the last minute (slowest first) and its latest failed turns (newest first),
    /// since ``keepRecentCalls()``.
    package var recentCalls: (slowest: [RecentCall], failed: [RecentCall]) {
        (runtime.callLog.slowest(now: NodeRuntime.now()), runtime.callLog.failed)
    }

    /// This node's live activations by actor type.
    package var activationsByType: [String: Int] {
        directory.all().reduce(into: [:]) { counts, activation in counts[activation.id.typeName, default: 0] += 1 }
    }

    /// The tracer of this node's spans, if it traces (``NodeConfiguration/tracer``, or the process's).
    package var tracer: (any Tracer)? { runtime.tracing?.tracer }

    /// How many tasks the node started still run (its loops and background work, and actors' turns): none
    /// once it stopped.
    package var runningTasks: Int { runtime.loops.count + runtime.tasks.count + runtime.turns.count }
}

extension PlexNode: ActorCallRouter {
    public func ask<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request, options: CallOptions)
        async throws -> A.Response
    {
        try await dispatcher.ask(type, id, request, options: options)
    }

    public func tell<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request) async throws {
        try await dispatcher.tell(type, id, request)
    }

    /// Calls `id` with a request in JSON, wherever it lives, and returns its reply in JSON: for callers that do
    /// not link the actor's Swift types, such as the HTTP gateway. The owner decodes the request as the
    /// actor's `Request` (the shape `JSONEncoder` gives it), so this node need not register the type.
    ///
    /// - Parameter executor: Where the actor's turn runs when this node owns it; `nil`: a task on the global
    ///   pool. A caller that runs on an event loop's executor (the gateway's connections do) passes it, so a
    ///   local call is read, run and answered without waking another thread.
    /// - Throws: ``CallError``: `unknownActorType` when the owner does not register the type, `invalidRequest`
    ///   when the JSON does not decode as its request, and the errors of any call.
    public func ask(
        _ id: ActorID, json: [UInt8], options: CallOptions = CallOptions(), on executor: (any TaskExecutor)? = nil
    ) async throws(CallError) -> [UInt8] {
        try await dispatcher.askJSON(id, json: json, options: options, on: executor)
    }

    /// The cluster as this node sees it: what `plex cluster status` prints.
    public var clusterStatus: ClusterStatus { admin.status().status }
}
