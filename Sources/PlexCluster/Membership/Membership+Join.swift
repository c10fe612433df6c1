internal import FoundationEssentials
internal import PlexCore
internal import PlexTransport
internal import PlexWire

extension Membership {
    /// Waits (up to the join timeout) until this node belongs to a cluster; the join loop keeps dialling
    /// the seeds meanwhile and after. The first seed founds a new cluster if none answered by then.
    ///
    /// A node that started from its kept ring waits (up to the same timeout) to hear from the members in it,
    /// so that once `start` returns its calls usually go through; those still silent stay unreachable.
    func join() async {
        let configuration = runtime.configuration
        let deadline = NodeRuntime.now() &+ configuration.membership.joinTimeout.clampedNanoseconds
        let selfID = runtime.nodeID
        func waiting() -> Bool {
            guard runtime.isRunning, NodeRuntime.now() < deadline else { return false }
            guard isJoined else { return true }
            return read { state in
                state.members.values.contains { $0.nodeID != selfID && $0.status == .up && !$0.reachable }
            }
        }
        while waiting() { try? await Task.sleep(for: .milliseconds(5)) }
        guard !isJoined else { return }
        if configuration.seeds.first.map(isOwnAddress) == true {
            foundCluster(reason: "first seed, and no other seed answered within the join timeout")
        } else {
            runtime.logger.warning(
                "waiting to join: no seed has answered yet; this node answers no call until one does",
                metadata: ["seeds": "\(configuration.seeds.map(\.description).joined(separator: ","))"])
        }
    }

    /// Whether `address` is this node's own (as bound, or as configured).
    func isOwnAddress(_ address: PeerAddress) -> Bool {
        let configuration = runtime.configuration
        return address == runtime.address || address == configuration.listenAddress
            || address == configuration.advertisedAddress
    }

    /// Founds a new cluster with this node as its only member.
    func foundCluster(reason: String) {
        let clusterID = UUID().uuidString.lowercased()
        update { $0.found(clusterID: clusterID) }
        runtime.logger.notice(
            "founded a new cluster", metadata: ["cluster.id": "\(clusterID)", "reason": "\(reason)"])
    }

    /// What `plex cluster status` says about this node's membership.
    var joinDescription: String {
        if isJoined { return "joined" }
        let seeds = runtime.configuration.seeds.filter { !isOwnAddress($0) }.map(\.description)
        return "joining: waiting for a seed that belongs to a cluster (\(seeds.joined(separator: ", ")))"
    }

    /// Until this node belongs to a cluster, keeps every seed connected; gossip over those links (every
    /// heartbeat) asks to join, and the first gossip that names a cluster makes this node a member.
    ///
    /// Once it belongs to one, it still dials (rarely) the seeds that are not among its members, so that two
    /// clusters formed apart meet and refuse each other loudly instead of running side by side unnoticed.
    func joinLoop() async {
        let configuration = runtime.configuration
        let seeds = configuration.seeds.filter { !isOwnAddress($0) }
        var seedNodes: [PeerAddress: NodeID] = [:]
        var backoff: Duration = .milliseconds(50)
        var lastReport = NodeRuntime.now()
        while !Task.isCancelled && runtime.isRunning {
            let isJoined = self.isJoined
            let memberAddresses = read { Set($0.members.values.map(\.address)) }
            for seed in seeds {
                if isJoined && memberAddresses.contains(seed.description) { continue }
                if let known = seedNodes[seed], existingLink(to: known)?.isConnected == true { continue }
                do {
                    let delegate = NodeDelegate(relay: delegates)
                    let connection = try await runtime.transport.connect(to: seed, delegate: delegate)
                    let peer = connection.peer.nodeID
                    seedNodes[seed] = peer
                    if peer != runtime.nodeID, case let link = self.link(for: peer),
                        link.attachIfDisconnected(connection)
                    {
                        delegate.bind(link)
                        heard(connection.peer)
                        connection.send(gossipFrame())
                    } else {
                        connection.close()
                    }
                } catch {
                    runtime.logger.debug("seed not reachable", metadata: ["seed": "\(seed)", "error": "\(error)"])
                }
            }
            if NodeRuntime.now() &- lastReport > 5_000_000_000 && !self.isJoined {
                lastReport = NodeRuntime.now()
                runtime.logger.warning(
                    "still waiting to join: no seed that belongs to a cluster has answered",
                    metadata: ["seeds": "\(seeds.map(\.description).joined(separator: ","))"])
            }
            try? await Task.sleep(for: backoff)
            let ceiling = isJoined ? .seconds(30) : configuration.membership.maximumReconnectBackoff
            backoff = min(backoff * 2, ceiling)
        }
    }
}
