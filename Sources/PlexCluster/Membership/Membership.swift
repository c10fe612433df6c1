internal import FoundationEssentials
internal import Logging
internal import PlexCore
internal import PlexJournal
internal import PlexTransport
internal import PlexWire
internal import Synchronization

/// What the rest of a node does when its membership changes; the node implements it and hands itself to
/// ``Membership/bind(_:)`` when it starts.
protocol MembershipObserver: AnyObject, Sendable {
    /// How many activations this node has (reported in gossip and status).
    var activationCount: Int { get }
    /// The ring changed; the new routing table is published already.
    func ringChanged()
    /// This node joined its cluster, or a member connected: what it holds for others may move now.
    func handOffSoon()
    /// The cluster says this process must stop serving (removed, or its identity taken by a later start).
    func mustStop(_ error: NodeError)
}

/// A node's membership role: the view of the cluster (``MembershipState``) and the ring file it keeps, the
/// links to members and their reconnection, joining through seeds, gossip (which doubles as the heartbeat)
/// and the failure detector, and the routing table calls read.
///
/// Its state is behind one lock. Every change goes through ``update(_:)``, which writes the ring file first
/// when what it keeps changed, and publishes a new ``RoutingTable`` (an immutable snapshot, all a call reads)
/// when what routing sees changed.
final class Membership: Sendable {
    private struct State: @unchecked Sendable {
        // Sendable: guarded by the mutex that holds it (the weak reference included).
        var view: MembershipState
        /// This node's links to members, for its own calls.
        var links: [NodeID: PeerLink] = [:]
        /// Members being dialled now.
        var dialling: Set<NodeID> = []
        weak var observer: (any MembershipObserver)?
    }

    let runtime: NodeRuntime
    private let state: Mutex<State>
    /// What calls route by: published under `state`'s lock, read without it.
    private let published: Mutex<RoutingTable>
    /// Connections refused because the peer belongs to another cluster (a counter for tests and status).
    let foreignClusters = Atomic<Int>(0)
    /// Receives the frames of connections this role opens.
    let delegates: NodeDelegate

    /// - Parameters:
    ///   - storedRing: The ring kept in the data directory, if any: the node starts from it, joined.
    ///   - delegates: Receives the frames of the connections this role opens (the node's inbound dispatch).
    init(runtime: NodeRuntime, storedRing: StoredRing?, delegates: NodeDelegate) {
        self.runtime = runtime
        self.delegates = delegates
        let configuration = runtime.configuration
        let selfRecord = MemberRecord(
            nodeID: runtime.nodeID, address: (configuration.advertisedAddress ?? runtime.address).description,
            incarnation: runtime.incarnation, status: .up, activations: 0, reachable: true, lastHeard: 0)
        let view =
            storedRing.map { MembershipState(selfRecord: selfRecord, stored: $0) }
            ?? MembershipState(selfRecord: selfRecord)
        self.state = Mutex(State(view: view))
        self.published = Mutex(RoutingTable(membership: view, links: [:]))
    }

    func bind(_ observer: any MembershipObserver) {
        state.withLock { $0.observer = observer }
    }

    private var observer: (any MembershipObserver)? { state.withLock { $0.observer } }
    /// This node's activation count, as its observer reports it.
    var observerActivationCount: Int { observer?.activationCount ?? 0 }
    private var nodeID: NodeID { runtime.nodeID }
    private var logger: Logger { runtime.logger }

    // MARK: Reading the view

    /// What calls route by now.
    @inline(__always)
    var routing: RoutingTable { published.withLock { $0 } }

    /// Whether this node belongs to a cluster and knows its ring.
    var isJoined: Bool { routing.joined }

    /// Reads the membership view.
    func read<T>(_ body: (MembershipState) -> T) -> T { state.withLock { body($0.view) } }

    var clusterID: String? { read { $0.clusterID } }

    /// The status of `node` in this node's view (`nil` if unknown).
    func status(of node: NodeID) -> MemberStatus? { read { $0.members[node]?.status } }

    /// The link to `node`, if this node made one.
    func existingLink(to node: NodeID) -> PeerLink? { state.withLock { $0.links[node] } }

    /// Every link this node made.
    var allLinks: [PeerLink] { state.withLock { Array($0.links.values) } }

    /// The members this node knows, with its own activation count filled in.
    func memberRecords(activations: Int) -> [MemberRecord] {
        read { state in
            var records = Array(state.members.values)
            if let index = records.firstIndex(where: { $0.nodeID == nodeID }) {
                records[index].activations = UInt32(clamping: activations)
            }
            return records.sorted { $0.nodeID < $1.nodeID }
        }
    }

    // MARK: Changing the view

    /// Mutates the membership view and, if that changed what routing sees, publishes a new routing table.
    ///
    /// When what the node keeps in its data directory changed (members, statuses, the cluster id), the ring
    /// file is written first, so nothing acts on a ring a crash could forget. Both happen under the membership
    /// lock (changes are rare; calls read only the routing table), so the view, the file and the routing table
    /// never disagree, and a slower publisher never replaces a newer table with an older one.
    func update<T>(_ body: (inout MembershipState) -> T) -> T {
        state.withLock { state -> T in
            let (before, storedBefore, joinedBefore) =
                (state.view.generation, state.view.storedVersion, state.view.clusterID != nil)
            let result = body(&state.view)
            if state.view.storedVersion != storedBefore, let ring = state.view.stored { saveRing(ring) }
            if state.view.generation != before || (state.view.clusterID != nil) != joinedBefore {
                publish(state)
            }
            return result
        }
    }

    /// Mutates the view and carries out what changed.
    func change(_ body: (inout MembershipState) -> [MembershipState.Change]) {
        let changes = update(body)
        if !changes.isEmpty { carryOut(changes) }
    }

    /// Publishes a new routing table from `state` (called with its lock held).
    private func publish(_ state: State) {
        let table = RoutingTable(membership: state.view, links: state.links)
        published.withLock { $0 = table }
    }

    /// Writes the ring file (called with the membership lock held, so writes never race).
    private func saveRing(_ ring: StoredRing) {
        do {
            try RingStore.save(ring, dataDirectory: runtime.configuration.dataDirectory)
        } catch {
            logger.error("cannot keep the ring in the data directory", metadata: ["error": "\(error)"])
        }
    }

    /// Carries out changes of the view: dials new members, logs, and tells the node what concerns it.
    func carryOut(_ changes: [MembershipState.Change]) {
        for change in changes {
            switch change {
            case .discovered(let node, let address):
                logger.info("member discovered", metadata: ["member": "\(node)", "address": "\(address)"])
                reconnect(node)
            case .ringChanged:
                let ring = read { $0.ring.map(\.node.rawValue) }
                logger.info("ring changed", metadata: ["ring": "\(ring.joined(separator: ","))"])
                observer?.ringChanged()
            case .joinedCluster(let clusterID):
                logger.info("joined the cluster", metadata: ["cluster.id": "\(clusterID)"])
                observer?.handOffSoon()
            case .removed(let by):
                // Kept in the data directory: started again, the node refuses to run instead of serving the
                // copies it kept until it hears of the removal again.
                RingStore.recordRemoval(
                    dataDirectory: runtime.configuration.dataDirectory,
                    notice: "\(nodeID) was removed from cluster \(clusterID ?? "?") by an operator (as \(by) "
                        + "reported).")
                observer?.mustStop(
                    NodeError(
                        .removed,
                        "\(nodeID) was removed from its cluster by an operator (as \(by) reports) while it ran; it "
                            + "stopped serving. Removal is for good: the cluster refuses this id from now on, so "
                            + "copies of actors this journal kept from before the removal never serve again (they "
                            + "stay in it, readable with plex journal inspect). To bring the machine back, start it "
                            + "with a new node id and a new data directory."))
            case .identityTaken(let incarnation):
                observer?.mustStop(
                    NodeError(
                        .dataDirectory,
                        "the cluster knows \(nodeID) at incarnation \(incarnation), later than this start's "
                            + "\(runtime.incarnation): this data directory is not the one \(nodeID) ran on (or "
                            + "another process uses the id). Restore its data directory, or remove \(nodeID) with "
                            + "plex cluster remove and start this node with a new id."))
            case .reachability(let node, let reachable):
                if reachable {
                    logger.info("member reachable", metadata: ["member": "\(node)"])
                } else {
                    logger.warning("member unreachable", metadata: ["member": "\(node)"])
                }
            }
        }
    }

    // MARK: Signs of life

    /// Records a sign of life from `peer` (a handshake): refreshes a member known at that incarnation.
    func heard(_ peer: PeerIdentity) {
        change {
            $0.heard(
                from: peer.nodeID, incarnation: peer.incarnation, address: peer.listenAddress, now: NodeRuntime.now())
        }
    }

    /// An accepted connection from a member counts as a sign of life. An outgoing one counts only once
    /// its opener has checked that the peer is the member it dialled (see `reconnect` and `joinLoop`).
    func connectionEstablished(_ connection: any Connection) {
        let peer = connection.peer
        guard peer.role == .node, !connection.isOutbound, PeerAddress(parsing: peer.listenAddress) != nil else {
            return
        }
        heard(peer)
        // A member that (re)connects learns what this node holds for it, and that nothing else is coming.
        observer?.handOffSoon()
    }

    func connectionClosed(_ connection: any Connection) {
        let peer = connection.peer
        guard peer.role == .node, let link = existingLink(to: peer.nodeID) else { return }
        if link.connection === connection {
            link.detach(connection)
            logger.info("connection lost", metadata: ["peer": "\(peer)"])
            reconnect(peer.nodeID)
        }
    }

    /// Gossip from a member (or from a node that is joining): merged when it is from this node's cluster,
    /// refused loudly when it is from another.
    func received(_ gossip: Gossip, from peer: PeerIdentity, on connection: any Connection) {
        let now = NodeRuntime.now()
        let (verdict, senderRemoved) = update { state in
            let verdict = state.receive(
                gossip, from: peer.nodeID, incarnation: peer.incarnation, address: peer.listenAddress, now: now)
            return (verdict, state.members[peer.nodeID]?.status == .removed)
        }
        switch verdict {
        case .merged(let changes):
            carryOut(changes)
            // A removed member (alive, or started again) is no longer dialled: tell it on its own connection.
            if senderRemoved { connection.send(gossipFrame()) }
        case .ignored:
            break
        case .foreign(let theirs):
            logger.error(
                "refusing a member of another cluster: two clusters were founded apart and are never merged",
                metadata: ["peer": "\(peer)", "cluster.id": "\(clusterID ?? "")", "peer.cluster.id": "\(theirs)"])
            foreignClusters.add(1, ordering: .relaxed)
            connection.close()
        }
    }

    // MARK: Links and reconnection

    /// The link to `node`, made (and published to routing) if there is none.
    func link(for node: NodeID) -> PeerLink {
        state.withLock { state in
            if let link = state.links[node] { return link }
            let link = PeerLink(peer: node, maximumInFlight: runtime.configuration.calls.maximumInFlightPerPeer)
            state.links[node] = link
            publish(state)
            return link
        }
    }

    /// Keeps trying to connect to `node` with exponential backoff until connected, the node is out of the
    /// ring, or this node stops.
    func reconnect(_ node: NodeID) {
        guard node != nodeID, runtime.isRunning else { return }
        let link = link(for: node)
        guard !link.isConnected else { return }
        guard state.withLock({ $0.dialling.insert(node).inserted }) else {
            logger.trace("already dialling", metadata: ["member": "\(node)"])
            return
        }
        let started = runtime.tasks.start {
            defer { _ = self.state.withLock { $0.dialling.remove(node) } }
            await self.dial(node, link: link)
        }
        if !started { _ = state.withLock { $0.dialling.remove(node) } }
    }

    private func dial(_ node: NodeID, link: PeerLink) async {
        logger.debug("dialling", metadata: ["member": "\(node)"])
        var backoff: Duration = .milliseconds(50)
        while runtime.isRunning && !Task.isCancelled && !link.isConnected {
            let target = read { state -> (String, MemberStatus)? in
                state.members[node].map { ($0.address, $0.status) }
            }
            guard let (addressText, status) = target, status == .up, let address = PeerAddress(parsing: addressText)
            else { return }
            do {
                let connection = try await runtime.transport.connect(
                    to: address, delegate: NodeDelegate(relay: delegates, link: link))
                if connection.peer.nodeID != node {
                    logger.warning(
                        "address answered with another node id",
                        metadata: ["expected": "\(node)", "found": "\(connection.peer.nodeID)"])
                    connection.close()
                } else if link.attachIfDisconnected(connection) {
                    heard(connection.peer)
                    connection.send(gossipFrame())
                    logger.debug("connected", metadata: ["peer": "\(connection.peer)"])
                    return
                } else {
                    connection.close()  // another path connected first
                    return
                }
            } catch {
                logger.debug("connect failed", metadata: ["member": "\(node)", "error": "\(error)"])
            }
            let jitter = Double.random(in: 0.8...1.2)
            try? await Task.sleep(for: backoff * jitter)
            backoff = min(backoff * 2, runtime.configuration.membership.maximumReconnectBackoff)
        }
    }

    /// Drops every link's connection (the node stops): calls in flight on them fail at once.
    func detachAll() {
        for link in allLinks {
            if let connection = link.connection { link.detach(connection) }
        }
    }
}
