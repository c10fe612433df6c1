internal import PlexCore
internal import PlexWire

extension AdminCommands {
    /// Takes a member out of the ring for good, at an operator's request; returns what that means, in words.
    ///
    /// Refused unless every member this node can reach agrees that `node` is unreachable (each is asked for
    /// its own view): a member that is up and reachable anywhere should leave (and hand off) instead, and a
    /// partition seen from one side only must not remove a live node. The members that agree (this one
    /// included) must also be a majority of the ring's other members, so a node cut off from most of the
    /// cluster cannot remove a member on its own; `force` waives only that majority, for members known to be
    /// gone for good. A removed node that is in fact alive learns of it on its next contact and stops.
    func remove(_ node: NodeID, force: Bool = false) async -> String {
        guard node != nodeID else { return "refused: \(node) is the node answering; stop it with plex node stop" }
        guard let record = membership.read({ $0.members[node] }) else {
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
        let others = membership.read { state in state.ring.filter { $0.node != node }.map(\.node) }
        let voters = others.count + 1
        if !force && (agreeing.count + 1) * 2 <= voters {
            let silent = others.filter { $0 != nodeID && !agreeing.contains($0) }.map(\.rawValue).sorted()
            let notAsked = silent.isEmpty ? "" : " (not \(silent.joined(separator: ", ")))"
            return
                "refused: only \(agreeing.count + 1) of the \(voters) members (\(node) counted) could confirm that "
                + "\(node) is unreachable\(notAsked), not a majority: this node may be the one cut off. If the "
                + "others are gone for good too, repeat with --force."
        }
        membership.change { $0.markRemoved(node) }
        membership.broadcastGossip()
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
        let selfID = nodeID
        let peers = membership.read { state in
            state.members.values.filter { $0.nodeID != selfID && $0.nodeID != node && $0.status == .up && $0.reachable }
                .map(\.nodeID)
        }
        let body = AdminRequest.status.body
        return await withTaskGroup(of: (NodeID, String?).self) { group in
            for peer in peers {
                group.addTask {
                    guard let link = self.membership.existingLink(to: peer), link.isConnected else {
                        return (peer, "could not be asked (not connected)")
                    }
                    do {
                        let deadline = Deadline.after(.seconds(5))
                        let frame = try await link.call(kind: .adminRequest, flags: [], body: body, deadline: deadline)
                        guard frame.kind == .adminReply else { return (peer, "answered with a \(frame.kind) frame") }
                        let reply = try AdminReply(frame: frame)
                        switch reply.members.first(where: { $0.member.nodeID == node.rawValue })?.reachability {
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
}
