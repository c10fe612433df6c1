internal import PlexCore
internal import PlexWire

extension Membership {
    /// The gossip frame describing this node's view (with its activation count).
    func gossipFrame() -> Wire.Frame {
        let count = observerActivationCount
        return update { state in
            state.setSelfActivations(count)
            return state.gossip()
        }.frame
    }

    /// Sends this node's view to every member it has a link to.
    func broadcastGossip() {
        let frame = gossipFrame()
        for link in allLinks { try? link.send(frame) }
    }

    /// Gossips every heartbeat, judges reachability (the failure detector) and redials members that are up.
    func gossipLoop() async {
        let configuration = runtime.configuration.membership
        let threshold = configuration.unreachableAfter.clampedNanoseconds
        while !Task.isCancelled {
            broadcastGossip()
            change { $0.checkReachability(now: NodeRuntime.now(), threshold: threshold) }
            for node in read({ $0.members.values.filter { $0.status == .up }.map(\.nodeID) }) {
                reconnect(node)
            }
            try? await Task.sleep(for: configuration.heartbeatInterval)
        }
    }

    /// Fails calls whose deadline passed (every 5 ms).
    func sweepLoop() async {
        while !Task.isCancelled {
            let now = NodeRuntime.now()
            for link in allLinks { link.expire(now: now) }
            try? await Task.sleep(for: .milliseconds(5))
        }
    }
}
