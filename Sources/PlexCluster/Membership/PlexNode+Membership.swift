internal import FoundationEssentials
internal import NIOCore
internal import PlexCore
internal import PlexTransport
internal import PlexWire
internal import SwiftProtobuf

extension PlexNode {
    // MARK: Transport events

    /// An accepted connection from a member counts as a sign of life. An outgoing one counts only once
    /// its opener has checked that the peer is the member it dialled (see `reconnect` and `join`).
    func connectionEstablished(_ connection: any Connection) {
        let peer = connection.peer
        guard peer.role == .node, !connection.isOutbound, PeerAddress(parsing: peer.listenAddress) != nil else {
            return
        }
        heard(peer)
        // A member that (re)connects learns what this node holds for it, and that nothing else is coming.
        scheduleHandOffRound()
    }

    func received(_ frame: Wire.Frame, on connection: any Connection) {
        switch frame.kind {
        case .call, .tell:
            // The hot path. Liveness comes from gossip (every heartbeat interval), not from every frame.
            handleInboundCall(frame, on: connection)
        case .reply, .errorReply, .adminReply:
            // Normally completed by the connection's delegate; this covers a connection made before its link.
            links.withLock { $0[connection.peer.nodeID] }?.complete(frame)
        case .gossip:
            let peer = connection.peer
            guard peer.role == .node, let gossip = decodeOrClose(Plexspaces_V1_Gossip.self, frame, on: connection)
            else { return }
            receivedGossip(gossip, from: peer, on: connection)
        case .adminRequest:
            handleAdmin(frame, on: connection)
        case .handoff:
            handleHandoff(frame, on: connection)
        case .cancel:
            break  // no cancellation of running handlers yet
        case .handshake, .handshakeAck:
            break  // the session rejects these after the handshake
        }
    }

    func connectionClosed(_ connection: any Connection, error: (any Error)?) {
        let peer = connection.peer
        guard peer.role == .node, let link = links.withLock({ $0[peer.nodeID] }) else { return }
        if link.connection === connection {
            link.detach(connection)
            logger.info("connection lost", metadata: ["peer": "\(peer)"])
            reconnect(peer.nodeID)
        }
    }

    /// Gossip from a member (or from a node that is joining): merged when it is from this node's cluster,
    /// refused loudly when it is from another.
    func receivedGossip(_ gossip: Plexspaces_V1_Gossip, from peer: PeerIdentity, on connection: any Connection) {
        let now = Self.now()
        let (verdict, senderRemoved) = updateMembership { state in
            let verdict = state.receive(
                gossip, from: peer.nodeID, incarnation: peer.incarnation, address: peer.listenAddress, now: now)
            let record = state.members[peer.nodeID]
            return (verdict, record?.status == .removed)
        }
        switch verdict {
        case .merged(let changes):
            apply(changes)
            // A removed member (alive, or started again) is no longer dialled: tell it on its own connection.
            if senderRemoved { connection.send(gossipFrame()) }
        case .ignored:
            break
        case .foreign(let theirs):
            let mine = membership.withLock { $0.clusterID } ?? ""
            logger.error(
                "refusing a member of another cluster: two clusters were founded apart and are never merged",
                metadata: [
                    "peer": "\(peer)", "cluster.id": "\(mine)", "peer.cluster.id": "\(theirs)",
                ])
            foreignClusters.add(1, ordering: .relaxed)
            connection.close()
        }
    }

    /// Records a sign of life from `peer` (a handshake): refreshes a member known at that incarnation.
    func heard(_ peer: PeerIdentity) {
        let changes = updateMembership {
            $0.heard(from: peer.nodeID, incarnation: peer.incarnation, address: peer.listenAddress, now: Self.now())
        }
        if !changes.isEmpty { apply(changes) }
    }

    // MARK: Membership changes

    func apply(_ changes: [MembershipState.Change]) {
        for change in changes {
            switch change {
            case .discovered(let node, let address):
                logger.info("member discovered", metadata: ["member": "\(node)", "address": "\(address)"])
                reconnect(node)
            case .ringChanged:
                let ring = membership.withLock { $0.ring.map(\.node.rawValue) }
                logger.info("ring changed", metadata: ["ring": "\(ring.joined(separator: ","))"])
                // A `done` was for the ring before: every member pushes again for this one.
                handoff.withLock { $0.settled = [:] }
                releaseActorsOwnedElsewhere()
                scheduleHandOffRound()
            case .joinedCluster(let clusterID):
                joined.store(true, ordering: .relaxed)
                logger.info("joined the cluster", metadata: ["cluster.id": "\(clusterID)"])
                scheduleHandOffRound()
            case .removed(let by):
                // Kept in the data directory: started again, the node refuses to run instead of serving the
                // copies it kept until it hears of the removal again.
                RingStore.recordRemoval(
                    dataDirectory: configuration.dataDirectory,
                    notice: "\(nodeID) was removed from cluster \(membership.withLock { $0.clusterID } ?? "?") by an "
                        + "operator (as \(by) reported).")
                stopServing(
                    NodeError(
                        .removed,
                        "\(nodeID) was removed from its cluster by an operator (as \(by) reports) while it ran; it "
                            + "stopped serving. Removal is for good: the cluster refuses this id from now on, so "
                            + "copies of actors this journal kept from before the removal never serve again (they "
                            + "stay in it, readable with plex journal inspect). To bring the machine back, start it "
                            + "with a new node id and a new data directory."))
            case .identityTaken(let incarnation):
                stopServing(
                    NodeError(
                        .dataDirectory,
                        "the cluster knows \(nodeID) at incarnation \(incarnation), later than this start's "
                            + "\(self.incarnation): this data directory is not the one \(nodeID) ran on (or another "
                            + "process uses the id). Restore its data directory, or remove \(nodeID) with plex cluster "
                            + "remove and start this node with a new id."))
            case .reachability(let node, let reachable):
                if reachable {
                    logger.info("member reachable", metadata: ["member": "\(node)"])
                } else {
                    logger.warning("member unreachable", metadata: ["member": "\(node)"])
                }
            }
        }
    }

    /// After a ring change, activations this node no longer owns are deactivated, so an actor is never
    /// active on two nodes.
    private func releaseActorsOwnedElsewhere() {
        let types = self.types.withLock { $0 }
        let moved = table.all().filter { activation in
            let placement = types[activation.id.typeName]?.placement ?? .pinned
            return routing.withLock { $0 }.owner(of: activation.id, placement: placement)?.node != nodeID
        }
        guard !moved.isEmpty else { return }
        Task {
            for activation in moved { await self.deactivate(activation) }
        }
    }

    // MARK: Links and reconnection

    func link(for node: NodeID) -> PeerLink {
        let (link, created) = links.withLock { links -> (PeerLink, Bool) in
            if let link = links[node] { return (link, false) }
            let link = PeerLink(peer: node, maximumInFlight: configuration.calls.maximumInFlightPerPeer)
            links[node] = link
            return (link, true)
        }
        if created { refreshRouting() }
        return link
    }

    /// Keeps trying to connect to `node` with exponential backoff until connected, the node is out of the
    /// ring, or this node stops.
    func reconnect(_ node: NodeID) {
        guard node != nodeID, running.load(ordering: .relaxed) else { return }
        let link = link(for: node)
        guard !link.isConnected else { return }
        guard connecting.withLock({ $0.insert(node).inserted }) else {
            logger.trace("already dialling", metadata: ["member": "\(node)"])
            return
        }
        Task {
            self.logger.debug("dialling", metadata: ["member": "\(node)"])
            defer { _ = self.connecting.withLock { $0.remove(node) } }
            var backoff: Duration = .milliseconds(50)
            while self.running.load(ordering: .relaxed) && !link.isConnected {
                let target = self.membership.withLock { state -> (String, MemberStatus)? in
                    state.members[node].map { ($0.address, $0.status) }
                }
                guard let (addressText, status) = target, status == .up, let address = PeerAddress(parsing: addressText)
                else { return }
                do {
                    let connection = try await self.transport.connect(
                        to: address, delegate: NodeDelegate(node: self, link: link))
                    if connection.peer.nodeID != node {
                        self.logger.warning(
                            "address answered with another node id",
                            metadata: ["expected": "\(node)", "found": "\(connection.peer.nodeID)"])
                        connection.close()
                    } else if link.attachIfDisconnected(connection) {
                        self.heard(connection.peer)
                        connection.send(self.gossipFrame())
                        self.logger.debug("connected", metadata: ["peer": "\(connection.peer)"])
                        return
                    } else {
                        connection.close()  // another path connected first
                        return
                    }
                } catch {
                    self.logger.debug("connect failed", metadata: ["member": "\(node)", "error": "\(error)"])
                }
                let jitter = Double.random(in: 0.8...1.2)
                try? await Task.sleep(for: backoff * jitter)
                backoff = min(backoff * 2, self.configuration.membership.maximumReconnectBackoff)
            }
        }
    }

    // MARK: Gossip and background work

    func gossipFrame() -> Wire.Frame {
        let count = table.count
        let gossip = membership.withLock { state in
            state.setSelfActivations(count)
            return state.gossip()
        }
        return Wire.Frame(kind: .gossip, body: Wire.body(gossip))
    }

    func broadcastGossip() {
        let frame = gossipFrame()
        for link in links.withLock({ Array($0.values) }) {
            try? link.send(frame)
        }
    }

    /// Waits (up to the join timeout) until this node belongs to a cluster; the join loop keeps dialling
    /// the seeds meanwhile and after. The first seed founds a new cluster if none answered by then.
    ///
    /// A node that started from its kept ring waits (up to the same timeout) to hear from the members in it,
    /// so that once `start` returns its calls usually go through; those still silent stay unreachable.
    func join() async {
        let deadline = Self.now() &+ configuration.membership.joinTimeout.clampedNanoseconds
        func waiting() -> Bool {
            guard running.load(ordering: .relaxed), Self.now() < deadline else { return false }
            guard joined.load(ordering: .relaxed) else { return true }
            return membership.withLock { state in
                state.members.values.contains { $0.nodeID != nodeID && $0.status == .up && !$0.reachable }
            }
        }
        while waiting() { try? await Task.sleep(for: .milliseconds(5)) }
        guard !joined.load(ordering: .relaxed) else { return }
        if configuration.seeds.first.map(isOwnAddress) == true {
            foundCluster(reason: "first seed, and no other seed answered within the join timeout")
        } else {
            logger.warning(
                "waiting to join: no seed has answered yet; this node answers no call until one does",
                metadata: ["seeds": "\(configuration.seeds.map(\.description).joined(separator: ","))"])
        }
    }

    /// Whether `address` is this node's own (as bound, or as configured).
    func isOwnAddress(_ address: PeerAddress) -> Bool {
        address == self.address || address == configuration.listenAddress || address == configuration.advertisedAddress
    }

    /// Founds a new cluster with this node as its only member.
    func foundCluster(reason: String) {
        let clusterID = UUID().uuidString.lowercased()
        updateMembership { $0.found(clusterID: clusterID) }
        joined.store(true, ordering: .relaxed)
        logger.notice("founded a new cluster", metadata: ["cluster.id": "\(clusterID)", "reason": "\(reason)"])
    }

    /// What `plex cluster status` says about this node's membership.
    func membershipDescription() -> String {
        if joined.load(ordering: .relaxed) { return "joined" }
        let seeds = configuration.seeds.filter { !isOwnAddress($0) }.map(\.description)
        return "joining: waiting for a seed that belongs to a cluster (\(seeds.joined(separator: ", ")))"
    }

    /// Until this node belongs to a cluster, keeps every seed connected; gossip over those links (every
    /// heartbeat) asks to join, and the first gossip that names a cluster makes this node a member.
    ///
    /// Once it belongs to one, it still dials (rarely) the seeds that are not among its members, so that two
    /// clusters formed apart meet and refuse each other loudly instead of running side by side unnoticed.
    private func joinLoop() async {
        let seeds = configuration.seeds.filter { !isOwnAddress($0) }
        var seedNodes: [PeerAddress: NodeID] = [:]
        var backoff: Duration = .milliseconds(50)
        var lastReport = Self.now()
        while !Task.isCancelled && running.load(ordering: .relaxed) {
            let isJoined = joined.load(ordering: .relaxed)
            let memberAddresses = membership.withLock { Set($0.members.values.map(\.address)) }
            for seed in seeds {
                if isJoined && memberAddresses.contains(seed.description) { continue }
                if let known = seedNodes[seed], links.withLock({ $0[known] })?.isConnected == true { continue }
                do {
                    let delegate = NodeDelegate(node: self)
                    let connection = try await transport.connect(to: seed, delegate: delegate)
                    let peer = connection.peer.nodeID
                    seedNodes[seed] = peer
                    if peer != nodeID, case let link = self.link(for: peer), link.attachIfDisconnected(connection) {
                        delegate.bind(link)
                        heard(connection.peer)
                        connection.send(gossipFrame())
                    } else {
                        connection.close()
                    }
                } catch {
                    logger.debug("seed not reachable", metadata: ["seed": "\(seed)", "error": "\(error)"])
                }
            }
            if Self.now() &- lastReport > 5_000_000_000 && !joined.load(ordering: .relaxed) {
                lastReport = Self.now()
                logger.warning(
                    "still waiting to join: no seed that belongs to a cluster has answered",
                    metadata: ["seeds": "\(seeds.map(\.description).joined(separator: ","))"])
            }
            try? await Task.sleep(for: backoff)
            let ceiling = isJoined ? .seconds(30) : configuration.membership.maximumReconnectBackoff
            backoff = min(backoff * 2, ceiling)
        }
    }

    /// Starts gossip, the failure detector, deadline sweeps and idle deactivation.
    ///
    /// They run on the transport's I/O executor when it has one, so a global pool kept busy (or blocked) by
    /// application code does not silence heartbeats and make healthy peers look dead.
    func startBackground() {
        let task = Task(executorPreference: transport.taskExecutor) {
            await withDiscardingTaskGroup { group in
                group.addTask { await self.joinLoop() }
                group.addTask { await self.gossipLoop() }
                group.addTask { await self.sweepLoop() }
                group.addTask { await self.idleLoop() }
                group.addTask { await self.reminderLoop() }
                group.addTask { await self.pruneLoop() }
            }
        }
        background.withLock { $0 = task }
    }

    private func gossipLoop() async {
        let threshold = configuration.membership.unreachableAfter.clampedNanoseconds
        while !Task.isCancelled {
            broadcastGossip()
            let changes = updateMembership { $0.checkReachability(now: Self.now(), threshold: threshold) }
            apply(changes)
            for node in membership.withLock({ $0.members.values.filter { $0.status == .up }.map(\.nodeID) }) {
                reconnect(node)
            }
            try? await Task.sleep(for: configuration.membership.heartbeatInterval)
        }
    }

    private func sweepLoop() async {
        while !Task.isCancelled {
            let now = Self.now()
            for link in links.withLock({ Array($0.values) }) { link.expire(now: now) }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Hourly, deletes journal entries kept past their checkpoint only for idempotency keys that have
    /// now expired.
    private func pruneLoop() async {
        guard !journal.keepsHistory else { return }
        let retention = Int64(clamping: configuration.idempotencyRetention.clampedNanoseconds / 1_000_000)
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(3600))
            guard !Task.isCancelled else { return }
            let cutoff = Int64(Date().timeIntervalSince1970 * 1000) - retention
            do {
                let pruned = try await journal.pruneExpiredKeys(before: cutoff)
                if pruned > 0 {
                    logger.info("pruned entries of expired idempotency keys", metadata: ["entries": "\(pruned)"])
                }
            } catch {
                logger.error("cannot prune the journal", metadata: ["error": "\(error)"])
            }
        }
    }

    private func idleLoop() async {
        let idle = configuration.activation.idleTimeout
        let idleNanoseconds = idle.clampedNanoseconds
        let period = min(max(idle / 4, .milliseconds(10)), .seconds(1))
        while !Task.isCancelled {
            try? await Task.sleep(for: period)
            let now = Self.now()
            guard now > idleNanoseconds else { continue }
            for activation in table.idle(since: now - idleNanoseconds) {
                await deactivate(activation)
            }
        }
    }

    /// Decodes a protobuf control-plane body; a malformed one is logged and closes that connection only.
    func decodeOrClose<M: SwiftProtobuf.Message>(_ type: M.Type, _ frame: Wire.Frame, on connection: any Connection)
        -> M?
    {
        do {
            return try Wire.decode(M.self, from: frame.body)
        } catch {
            logger.error(
                "closing connection after a malformed \(frame.kind) body",
                metadata: ["peer": "\(connection.peer)", "error": "\(error)"])
            connection.close()
            return nil
        }
    }

    // MARK: Admin

    func handleAdmin(_ frame: Wire.Frame, on connection: any Connection) {
        let correlation = frame.correlationID
        func answer(_ reply: Plexspaces_V1_AdminReply) {
            connection.send(Wire.Frame(kind: .adminReply, correlationID: correlation, body: Wire.body(reply)))
        }
        guard let request = decodeOrClose(Plexspaces_V1_AdminRequest.self, frame, on: connection) else { return }
        switch request.query {
        case .status, nil:
            answer(adminStatus())
        case .leave:
            logger.info("leaving at an operator's request", metadata: ["peer": "\(connection.peer)"])
            Task {
                let (moved, failed) = await self.drain()
                var reply = self.adminStatus()
                reply.moved = UInt32(clamping: moved)
                reply.notMoved = UInt32(clamping: failed)
                reply.outcome =
                    failed == 0
                    ? "\(self.nodeID) left the cluster; \(moved) durable actors were handed to their new owners"
                    : "\(self.nodeID) left the cluster; \(moved) durable actors were handed off, \(failed) were not "
                        + "(within the drain timeout) and stay in its journal until it rejoins"
                answer(reply)
                await self.shutdown()
            }
        case .remove(let remove):
            Task {
                var reply = self.adminStatus()
                reply.outcome = await self.removeMember(NodeID(unchecked: remove.nodeID), force: remove.force)
                answer(reply)
            }
        }
    }

    /// Takes a member out of the ring for good, at an operator's request; returns what that means, in words.
    ///
    /// Refused unless every member this node can reach agrees that `node` is unreachable (each is asked for
    /// its own view): a member that is up and reachable anywhere should leave (and hand off) instead, and a
    /// partition seen from one side only must not remove a live node. The members that agree (this one
    /// included) must also be a majority of the ring's other members, so a node cut off from most of the
    /// cluster cannot remove a member on its own; `force` waives only that majority, for members known to be
    /// gone for good. A removed node that is in fact alive learns of it on its next contact and stops.
    func removeMember(_ node: NodeID, force: Bool = false) async -> String {
        guard node != nodeID else { return "refused: \(node) is the node answering; stop it with plex node stop" }
        guard let record = membership.withLock({ $0.members[node] }) else {
            return "refused: \(node) is not a member known to \(nodeID)"
        }
        if record.status == .up && record.reachable {
            return "refused: \(node) is up and reachable; stop it with plex node stop, which hands its actors off"
        }
        if record.status == .removed { return "\(node) was removed already" }
        if record.status == .left { return "\(node) left the cluster already (a graceful leave); nothing to remove" }
        let (agreeing, disagreements) = await removalVotes(about: node)
        guard disagreements.isEmpty else {
            return "refused: not every reachable member agrees that \(node) is unreachable: "
                + disagreements.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: "; ")
        }
        // A majority of the ring, the node to remove counted: two sides of an even split can never both
        // gather one, so they cannot remove each other.
        let others = membership.withLock { state in state.ring.filter { $0.node != node }.map(\.node) }
        let voters = others.count + 1
        if !force && (agreeing.count + 1) * 2 <= voters {
            let silent = others.filter { $0 != nodeID && !agreeing.contains($0) }.map(\.rawValue).sorted()
            let notAsked = silent.isEmpty ? "" : " (not \(silent.joined(separator: ", ")))"
            return
                "refused: only \(agreeing.count + 1) of the \(voters) members (\(node) counted) could confirm that "
                + "\(node) is unreachable\(notAsked), not a majority: this node may be the one cut off. If the "
                + "others are gone for good too, repeat with --force."
        }
        let changes = updateMembership { $0.markRemoved(node) }
        apply(changes)
        broadcastGossip()
        logger.warning("member removed by an operator", metadata: ["member": "\(node)"])
        return """
            removed \(node) (incarnation \(record.incarnation)) from the ring. Its actors are placed on the \
            remaining members from now on. What is lost: what durable actors did on \(node) since they last \
            moved. One that a surviving member handed to \(node) comes back from that member's older copy; one \
            that never left \(node) starts again from its initial state. Their history stays in \(node)'s data \
            directory. If \(node) is alive, it stops when it next hears from the cluster, and if it is started \
            again on that data directory it is refused and stops: its old copies never serve again. To bring the \
            machine back, start it with a new node id and a new data directory.
            """
    }

    /// Asks every other member this node can reach whether it too sees `node` as unreachable; returns those
    /// that agree, and those that do not (or could not be asked) with what they said.
    private func removalVotes(about node: NodeID) async -> (agreeing: Set<NodeID>, disagreeing: [NodeID: String]) {
        let peers = membership.withLock { state in
            state.members.values.filter { $0.nodeID != nodeID && $0.nodeID != node && $0.status == .up && $0.reachable }
                .map(\.nodeID)
        }
        var query = Plexspaces_V1_AdminRequest()
        query.status = Plexspaces_V1_StatusQuery()
        let body = Wire.body(query)
        return await withTaskGroup(of: (NodeID, String?).self) { group in
            for peer in peers {
                group.addTask {
                    guard let link = self.links.withLock({ $0[peer] }), link.isConnected else {
                        return (peer, "could not be asked (not connected)")
                    }
                    do {
                        let (deadline, _) = self.deadline(.seconds(5))
                        let frame = try await link.call(kind: .adminRequest, flags: [], body: body, deadline: deadline)
                        guard frame.kind == .adminReply else { return (peer, "answered with a \(frame.kind) frame") }
                        let reply = try Wire.decode(Plexspaces_V1_AdminReply.self, from: frame.body)
                        let view = reply.members.first { $0.member.nodeID == node.rawValue }?.reachability
                        switch view {
                        case "unreachable", "left", "removed": return (peer, nil)
                        case let seen?: return (peer, "sees it \(seen)")
                        case nil: return (peer, "does not know it")
                        }
                    } catch {
                        return (peer, "could not be asked (\(error))")
                    }
                }
            }
            var agreeing: Set<NodeID> = []
            var disagreements: [NodeID: String] = [:]
            for await (peer, disagreement) in group {
                if let disagreement { disagreements[peer] = disagreement } else { agreeing.insert(peer) }
            }
            return (agreeing, disagreements)
        }
    }

    /// Stops serving at once because the cluster says this process must not (it was removed while it ran, or
    /// its identity belongs to a later incarnation), rather than run on as a second cluster.
    func stopServing(_ error: NodeError) {
        let first = stopReason.withLock { reason -> Bool in
            guard reason == nil else { return false }
            reason = error
            return true
        }
        guard first else { return }
        logger.critical("stopping: \(error.message)")
        Task { await self.halt() }
    }

    func adminStatus() -> Plexspaces_V1_AdminReply {
        var reply = Plexspaces_V1_AdminReply()
        reply.nodeID = nodeID.rawValue
        reply.clusterName = configuration.clusterName
        reply.clusterID = membership.withLock { $0.clusterID } ?? ""
        reply.membership = membershipDescription()
        let count = table.count
        let (gossip, records) = membership.withLock { state in
            state.setSelfActivations(count)
            return (state.gossip(), state.members)
        }
        reply.members = gossip.members.sorted { $0.nodeID < $1.nodeID }.map { member in
            var view = Plexspaces_V1_MemberView()
            view.member = member
            let record = records[NodeID(unchecked: member.nodeID)]
            view.reachability =
                member.status != .up
                ? (record?.status.description ?? "left")
                : (record?.reachable ?? false ? "up" : "unreachable")
            return view
        }
        reply.registry = gossip.registry
        return reply
    }
}
