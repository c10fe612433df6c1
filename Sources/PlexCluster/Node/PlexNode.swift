public import Logging
internal import NIOCore
public import PlexCore
public import PlexJournal
public import PlexTransport
internal import PlexWire
internal import Synchronization

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
public final class PlexNode: Sendable {
    /// This node's id.
    public let nodeID: NodeID
    /// This start's incarnation.
    public let incarnation: Incarnation
    /// The address the node listens on.
    public let address: PeerAddress
    /// The address other members dial to reach this node: ``NodeConfiguration/advertisedAddress`` if set
    /// (behind a proxy or NAT), else ``address``.
    public var advertisedAddress: PeerAddress { configuration.advertisedAddress ?? address }
    /// The configuration the node started with.
    public let configuration: NodeConfiguration
    let logger: Logger
    let transport: any Transport
    /// This node's journal: durable actors' messages, replies and checkpoints.
    public let journal: Journal
    let types = Mutex<[String: any AnyActorType]>([:])
    let table = ActivationTable()
    let membership: Mutex<MembershipState>
    /// What calls route by; replaced (never mutated) when membership or links change.
    let routing: Mutex<RoutingTable>
    let links = Mutex<[NodeID: PeerLink]>([:])
    let connecting = Mutex<Set<NodeID>>([])
    let callOrigin: UInt64
    let callSequence = Atomic<UInt64>(0)
    let running = Atomic<Bool>(true)
    let background = Mutex<Task<Void, Never>?>(nil)
    /// Whether this node knows its cluster's ring (kept from before, founded, or learned from a seed); until
    /// then it answers no call.
    let joined = Atomic<Bool>(false)
    /// Why the node stopped on its own, if it did (an operator removed it while it ran).
    let stopReason = Mutex<NodeError?>(nil)
    /// Connections refused because the peer belongs to another cluster.
    let foreignClusters = Atomic<Int>(0)
    /// Actor types refused at registration (``start`` fails with them).
    let refusedTypes = Mutex<[NodeError]>([])
    /// Reminders being delivered, and those waiting to be tried again.
    let reminderRetries = Mutex(ReminderRetries())
    /// Callers of `waitUntilStopped`; `nil` once the node stopped.
    let stopWaiters = Mutex<[CheckedContinuation<Void, Never>]?>([])
    /// Handoff progress: which peers finished pushing, and the push round in progress.
    let handoff = Mutex(HandoffState())
    /// Held while the node runs; released (by dropping it) when it stops.
    let dataLock = Mutex<DataDirectoryLock?>(nil)

    init(
        nodeID: NodeID, incarnation: Incarnation, address: PeerAddress, configuration: NodeConfiguration,
        transport: any Transport, journal: Journal, logger: Logger, storedRing: StoredRing?
    ) {
        self.journal = journal
        self.nodeID = nodeID
        self.incarnation = incarnation
        self.address = address
        self.configuration = configuration
        self.transport = transport
        self.logger = logger
        self.callOrigin = StableHash.hash(nodeID.rawValue, String(incarnation))
        let selfRecord = MemberRecord(
            nodeID: nodeID, address: (configuration.advertisedAddress ?? address).description,
            incarnation: incarnation, status: .up,
            activations: 0, reachable: true, lastHeard: 0)
        let state =
            storedRing.map { MembershipState(selfRecord: selfRecord, stored: $0) }
            ?? MembershipState(selfRecord: selfRecord)
        self.membership = Mutex(state)
        joined.store(state.clusterID != nil, ordering: .relaxed)
        self.routing = Mutex(RoutingTable(membership: state, links: [:]))
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
    /// - Throws: ``NodeError`` with code `invalidConfiguration`, `dataDirectory` or `bindFailed`.
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
        let handshake = HandshakeConfiguration(
            clusterName: configuration.clusterName, secret: configuration.secret,
            timeout: configuration.handshakeTimeout)
        let transport: any Transport
        switch choice {
        case .tcp:
            transport = TCPTransport(
                configuration: .init(
                    handshake: handshake, maximumFrameSize: configuration.maximumFrameSize,
                    maximumConnections: configuration.maximumConnections),
                logger: logger)
        case .inMemory(let network):
            transport = InMemoryTransport(
                network: network, handshake: handshake, logger: logger,
                maximumFrameSize: configuration.maximumFrameSize)
        }
        let delegate = NodeDelegate()
        let bound: PeerAddress
        do {
            bound = try await transport.bind(configuration.listenAddress, delegate: delegate)
        } catch {
            await journal.close()
            throw NodeError(.bindFailed, "cannot listen on \(configuration.listenAddress)", cause: error)
        }
        let node = PlexNode(
            nodeID: nodeID, incarnation: incarnation, address: bound, configuration: configuration,
            transport: transport, journal: journal, logger: logger, storedRing: storedRing)
        node.dataLock.withLock { $0 = lock }
        if let storedRing {
            logger.info(
                "starting from the ring kept in the data directory",
                metadata: ["cluster.id": "\(storedRing.clusterID)", "members": "\(storedRing.members.count)"])
        } else if configuration.bootstrap || configuration.seeds.allSatisfy(node.isOwnAddress) {
            node.foundCluster(reason: configuration.bootstrap ? "bootstrap" : "no seeds")
        }
        // Identity, actor types and the delegate are all in place before the first connection is accepted.
        transport.setLocalIdentity(
            PeerIdentity(
                role: .node, nodeID: nodeID, incarnation: incarnation,
                listenAddress: (configuration.advertisedAddress ?? bound).description))
        setup(node)
        if let refused = node.refusedTypes.withLock({ $0.first }) {
            await transport.shutdown()
            await journal.close()
            throw refused
        }
        delegate.bind(node)
        await transport.startAccepting()
        node.startBackground()
        await node.join()
        node.scheduleHandOffRound()
        logger.info(
            "node started", metadata: ["address": "\(bound)", "incarnation": "\(incarnation)"])
        return node
    }

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
        if case .durable = A.durability, A.placement == .failover {
            let error = NodeError(
                .invalidConfiguration,
                "actor type '\(A.typeName)': a durable type cannot use failover placement (it would run on both "
                    + "sides of a partition and fork its history); use pinned placement")
            logger.error("actor type refused", metadata: ["error": "\(error)"])
            refusedTypes.withLock { $0.append(error) }
            return
        }
        types.withLock { $0[A.typeName] = ActorTypeEntry<A>(make: make) }
    }

    /// A reference to the actor of type `A` with `key`; valid on every node.
    public func actor<A: VirtualActor>(_ type: A.Type, key: String) -> ActorRef<A> {
        ActorRef(key: key, router: self)
    }

    /// Activates `A`/`key` on this node (not where placement would put it) and registers it as `name`
    /// in the gossiped registry, so every node can ``resolve(_:name:)`` it.
    ///
    /// - Throws: ``CallError`` `unknownActorType` when `A` is not registered here.
    @discardableResult
    public func spawn<A: VirtualActor>(_ type: A.Type, key: String, name: String) throws -> ActorRef<A> {
        guard let entry = types.withLock({ $0[A.typeName] }) else {
            throw CallError(.unknownActorType, "\(A.typeName) is not registered on \(nodeID)")
        }
        let id = ActorID(typeName: A.typeName, key: key)
        updateMembership { $0.register(name: name, actor: id, node: nodeID) }
        _ = activation(for: id, entry: entry)
        broadcastGossip()
        return ActorRef(key: key, router: self)
    }

    /// The actor registered as `name` anywhere in the cluster, if this node has heard of it.
    public func resolve<A: VirtualActor>(_ type: A.Type, name: String) -> ActorRef<A>? {
        guard let entry = membership.withLock({ $0.registry[name] }), entry.actor.typeName == A.typeName else {
            return nil
        }
        return ActorRef(key: entry.actor.key, router: self)
    }

    /// The executor of the I/O thread that carries this node's outgoing calls (TCP only).
    ///
    /// A caller that runs on it (`withTaskExecutorPreference(node.taskExecutor) { … }`) sends and receives
    /// without waking another thread: on a small machine that halves the latency of a sequential remote
    /// call. Code running there must never block.
    public var taskExecutor: (any TaskExecutor)? { transport.taskExecutor }

    /// Traffic counters of the node's transport.
    public var transportStatistics: TransportStatistics { transport.statistics }

    /// The number of live activations on this node.
    public var activationCount: Int { table.count }

    /// Whether `id` is active on this node right now.
    public func isActive(_ id: ActorID) -> Bool { table.existing(id) != nil }

    /// The members this node knows, with its own view of their reachability.
    public var members: [MemberRecord] {
        membership.withLock { state in
            var records = Array(state.members.values)
            if let index = records.firstIndex(where: { $0.nodeID == nodeID }) {
                records[index].activations = UInt32(clamping: table.count)
            }
            return records.sorted { $0.nodeID < $1.nodeID }
        }
    }

    /// Whether this node belongs to a cluster and knows its ring; a node waiting for a seed answers no call.
    public var isJoined: Bool { joined.load(ordering: .relaxed) }

    /// The id of the cluster this node belongs to (`nil` while it waits to join one).
    public var clusterID: String? { membership.withLock { $0.clusterID } }

    /// Why the node stopped on its own, if it did: an operator removed it from the cluster while it ran.
    public var stoppedBecause: NodeError? { stopReason.withLock { $0 } }

    /// The members this node has an open connection to (for its own calls).
    public var connectedMembers: Set<NodeID> {
        Set(links.withLock { $0.values.filter(\.isConnected).map(\.peer) })
    }

    /// The node that owns `id` in this node's view (placement over the ring), ignoring named registrations.
    public func owner(of id: ActorID, placement: PlacementStrategy = .pinned) -> NodeID? {
        routing.withLock { $0 }.owner(of: id, placement: placement)?.node
    }

    /// Leaves the cluster gracefully: announces the leave, hands every durable actor it holds to its new
    /// owner, and stops.
    ///
    /// Other nodes take this node out of the ring when they hear the announcement, so its actors are
    /// placed elsewhere from then on. Each durable actor finishes the message in hand, checkpoints, and moves
    /// with its retained idempotency keys; new owners that are asked for an actor first pull it from here.
    /// Actors not moved within ``MembershipConfiguration/drainTimeout`` stay in this node's journal (the
    /// log says how many) and come back when the node rejoins.
    /// - Returns: How many durable actors moved, and how many could not.
    @discardableResult
    public func leave() async -> (moved: Int, failed: Int) {
        let result = await drain()
        await shutdown()
        return result
    }

    /// The first half of ``leave()``: announces the leave and hands off durable actors, but keeps running.
    func drain() async -> (moved: Int, failed: Int) {
        guard running.load(ordering: .relaxed) else { return (0, 0) }
        let changes = updateMembership { $0.setSelfStatus(.leaving) }
        apply(changes)
        broadcastGossip()
        let result = await handOffRound(until: Self.now() &+ configuration.membership.drainTimeout.clampedNanoseconds)
        if result.failed > 0 {
            logger.warning(
                "leaving with durable actors not handed off; they stay in this node's journal",
                metadata: ["failed": "\(result.failed)"])
        }
        return result
    }

    /// Returns when the node has stopped (by ``leave()``, ``shutdown()``, or an operator's `plex node stop`).
    public func waitUntilStopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let stoppedAlready = stopWaiters.withLock { waiters -> Bool in
                guard let _ = waiters else { return true }
                waiters!.append(continuation)
                return false
            }
            if stoppedAlready { continuation.resume() }
        }
    }

    /// Stops the node without announcing a leave: deactivates activations and closes every connection.
    public func shutdown() async {
        await stop(deactivating: true)
    }

    /// Stops the node the way a crash would look from outside and to its journal: the journal is abandoned
    /// as `kill -9` leaves it (``Journal/abandon()``: nothing queued is committed, nothing is filed, no
    /// write-ahead log checkpoint), no deactivation hooks and no checkpoints, connections dropped. For tests
    /// that simulate a crash in process.
    package func halt() async {
        await stop(deactivating: false)
    }

    private func stop(deactivating: Bool) async {
        guard running.exchange(false, ordering: .relaxed) else { return }
        // A crash stops the journal first, at once; what runs on until the tasks end cannot make it durable.
        if !deactivating { await journal.abandon() }
        let task = background.withLock { $0.take() }
        task?.cancel()
        await task?.value
        if deactivating {
            for activation in table.all() { await deactivate(activation) }
        }
        await transport.shutdown()
        for link in links.withLock({ Array($0.values) }) {
            if let connection = link.connection { link.detach(connection) }
        }
        if deactivating { await journal.close() }
        dataLock.withLock { $0 = nil }
        logger.info("node stopped")
        for waiter in stopWaiters.withLock({ $0.take() ?? [] }) { waiter.resume() }
    }

    // MARK: Internals shared by the extensions

    /// Nanoseconds on the monotonic clock.
    @inline(__always)
    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    func nextCallID() -> CallID {
        CallID(origin: callOrigin, sequence: callSequence.add(1, ordering: .relaxed).newValue)
    }

    func context(for id: ActorID) -> @Sendable (CallID?, String?, Bool) -> ActorContext {
        let nodeID = self.nodeID
        return { [unowned self] callID, idempotencyKey, replaying in
            ActorContext(
                id: id, nodeID: nodeID, callID: callID, idempotencyKey: idempotencyKey, isReplaying: replaying,
                router: self)
        }
    }

    func activation(for id: ActorID, entry: any AnyActorType) -> any AnyActivation {
        var created = false
        let activation = table.activation(for: id) {
            created = true
            return entry.makeActivation(
                id: id, now: Self.now(), journal: journal,
                retentionMilliseconds: Int64(
                    clamping: configuration.idempotencyRetention.clampedNanoseconds / 1_000_000),
                host: self, makeContext: context(for: id))
        }
        if created && table.count > configuration.activation.maximumActivations { evictExcess() }
        return activation
    }

    /// Deactivates `activation` in its turn, after the messages queued before.
    func deactivate(_ activation: any AnyActivation) async {
        await activation.mailbox.acquire()
        await activation.deactivateLocked()
        table.remove(activation)
        activation.mailbox.release()
    }

    private func evictExcess() {
        let excess = table.count - configuration.activation.maximumActivations
        let victims = table.leastRecentlyUsed(excess + max(1, configuration.activation.maximumActivations / 10))
        Task {
            for victim in victims { await self.deactivate(victim) }
        }
    }
}

/// Forwards transport events to the node once it exists (the transport needs a delegate before `bind`).
///
/// An outgoing connection's delegate also knows the link it serves, so a reply completes its call without
/// any lookup by node id.
final class NodeDelegate: ConnectionDelegate {
    private let targets = Mutex<(node: PlexNode?, link: PeerLink?)>((nil, nil))

    init(node: PlexNode? = nil, link: PeerLink? = nil) {
        targets.withLock { $0 = (node, link) }
    }

    func bind(_ node: PlexNode) { targets.withLock { $0.node = node } }
    func bind(_ link: PeerLink) { targets.withLock { $0.link = link } }

    func connectionEstablished(_ connection: any Connection) {
        targets.withLock { $0.node }?.connectionEstablished(connection)
    }

    func received(_ frame: Wire.Frame, on connection: any Connection) {
        let (node, link) = targets.withLock { ($0.node, $0.link) }
        switch frame.kind {
        case .reply, .errorReply, .adminReply:
            if let link { return link.complete(frame) }
        default: break
        }
        node?.received(frame, on: connection)
    }

    func connectionClosed(_ connection: any Connection, error: (any Error)?) {
        targets.withLock { $0.node }?.connectionClosed(connection, error: error)
    }
}
