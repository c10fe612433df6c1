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
            let now = Self.now()
            let changes = updateMembership { state in
                state.heard(from: peer.nodeID, incarnation: peer.incarnation, address: peer.listenAddress, now: now)
                    + state.merge(gossip, now: now)
            }
            joined.store(true, ordering: .relaxed)
            apply(changes)
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

    /// Records a sign of life from `peer` (a handshake); gossip does the same while merging.
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

    /// Connects to the seeds and waits (up to the join timeout) to hear gossip from one of them.
    func join() async {
        let seeds = configuration.seeds.filter { $0 != address }
        guard !seeds.isEmpty else {
            joined.store(true, ordering: .relaxed)
            return
        }
        await withDiscardingTaskGroup { group in
            for seed in seeds {
                group.addTask {
                    do {
                        let delegate = NodeDelegate(node: self)
                        let connection = try await self.transport.connect(to: seed, delegate: delegate)
                        let peer = connection.peer.nodeID
                        if peer != self.nodeID, case let link = self.link(for: peer),
                            link.attachIfDisconnected(connection)
                        {
                            delegate.bind(link)
                            self.heard(connection.peer)
                            connection.send(self.gossipFrame())
                        } else {
                            connection.close()
                        }
                    } catch {
                        self.logger.info("seed not reachable", metadata: ["seed": "\(seed)", "error": "\(error)"])
                    }
                }
            }
        }
        let deadline = Self.now() &+ configuration.membership.joinTimeout.clampedNanoseconds
        while !joined.load(ordering: .relaxed) && Self.now() < deadline
            && links.withLock({ $0.values.contains { $0.isConnected } })
        {
            try? await Task.sleep(for: .milliseconds(5))
        }
        joined.store(true, ordering: .relaxed)
    }

    /// Starts gossip, the failure detector, deadline sweeps and idle deactivation.
    ///
    /// They run on the transport's I/O executor when it has one, so a global pool kept busy (or blocked) by
    /// application code does not silence heartbeats and make healthy peers look dead.
    func startBackground() {
        let task = Task(executorPreference: transport.taskExecutor) {
            await withDiscardingTaskGroup { group in
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
            var reply = adminStatus()
            reply.outcome = removeMember(NodeID(unchecked: remove.nodeID))
            answer(reply)
        }
    }

    /// Takes a member out of the ring for good, at an operator's request; returns what that means, in words.
    /// A member that is up and reachable is refused: it should leave (and hand off) instead.
    func removeMember(_ node: NodeID) -> String {
        guard node != nodeID else { return "refused: \(node) is the node answering; stop it with plex node stop" }
        guard let record = membership.withLock({ $0.members[node] }) else {
            return "refused: \(node) is not a member known to \(nodeID)"
        }
        if record.status == .up && record.reachable {
            return "refused: \(node) is up and reachable; stop it with plex node stop, which hands its actors off"
        }
        let changes = updateMembership { $0.markLeft(node) }
        apply(changes)
        broadcastGossip()
        logger.warning("member removed by an operator", metadata: ["member": "\(node)"])
        return """
            removed \(node) (incarnation \(record.incarnation)) from the ring. Its actors are placed on the \
            remaining members from now on. What is lost: what durable actors did on \(node) since they last \
            moved. One that a surviving member handed to \(node) comes back from that member's older copy; one \
            that never left \(node) starts again from its initial state. Their history stays in \(node)'s data \
            directory. If \(node) is started again it rejoins: its actors that were not used elsewhere meanwhile \
            come back with their state, and those that were keep the newer state, replacing \(node)'s copy.
            """
    }

    func adminStatus() -> Plexspaces_V1_AdminReply {
        var reply = Plexspaces_V1_AdminReply()
        reply.nodeID = nodeID.rawValue
        reply.clusterName = configuration.clusterName
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
