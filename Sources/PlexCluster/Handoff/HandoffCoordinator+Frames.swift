internal import PlexCore
internal import PlexJournal
internal import PlexTransport
internal import PlexWire

extension HandoffCoordinator {
    /// A `handoff` frame arrived: a transfer, a pull or a `done`. Answers on the same connection.
    func received(_ frame: Wire.Frame, on connection: any Connection) {
        let peer = connection.peer
        guard peer.role == .node else {
            logger.error("closing a client connection that sent a handoff frame", metadata: ["peer": "\(peer)"])
            return connection.close()
        }
        let correlation = frame.correlationID
        let request: HandoffRequest
        do {
            request = try HandoffRequest(frame: frame)
        } catch let error as CallError {
            return connection.send(Wire.errorFrame(error, correlationID: correlation))
        } catch {
            logger.error(
                "closing connection after a malformed handoff body",
                metadata: ["peer": "\(connection.peer)", "error": "\(error)"])
            return connection.close()
        }
        runtime.tasks.start {
            do {
                let reply = try await self.answer(request, from: peer.nodeID).body
                try self.runtime.requireFits(reply, code: .codecFailure, "the handoff reply to \(peer.nodeID)")
                connection.send(Wire.Frame(kind: .reply, correlationID: correlation, body: reply))
            } catch {
                connection.send(
                    Wire.errorFrame(CallError.wrapping(error, as: .storageFailure), correlationID: correlation))
            }
        }
    }

    private func answer(_ request: HandoffRequest, from peer: NodeID) async throws -> HandoffReply {
        switch request {
        case .transfer(let transfer):
            // From the owner check to the store: a round beside it must not say `done` (the ring may change
            // while a stale activation is waited for, and the round would not see what is stored).
            let outcome: AdoptOutcome = try await adopting {
                try requireOwner(transfer.actor, is: nodeID)
                // A stale activation here (there should be none) goes first, so it cannot write over the transfer.
                if let activation = directory.existing(transfer.actor) { await directory.deactivate(activation) }
                return try await journalOperation("store the handoff of \(transfer.actor)") {
                    try await self.journal.adopt(transfer, from: peer)
                }
            } stored: { (outcome: AdoptOutcome) in
                outcome == .stored
            }
            if case .diverged(let held) = outcome {
                logDiverged(transfer, from: peer, held: held)
                throw CallError(
                    .storageFailure, "\(nodeID) holds another history of \(transfer.actor) and kept this copy aside",
                    remoteCode: divergedCode)
            }
            let stored = outcome == .stored
            logger.debug(
                stored ? "actor handed to this node" : "ignored a handoff of an epoch this node has passed",
                metadata: ["actor.id": "\(transfer.actor)", "from": "\(peer)", "epoch": "\(transfer.epoch)"])
            return .stored(stored)
        case .pull(let id):
            try requireOwner(id, is: peer)
            var answer = try await handOffLocally(id, to: peer)
            if case .movedTo(let target) = answer, membership.status(of: target) == .removed {
                // Handed to a member that was removed since: the copy here is the latest the cluster has.
                try await reclaim(id, from: target)
                answer = try await handOffLocally(id, to: peer)
            }
            switch answer {
            case .transfer(let transfer), .repeated(let transfer):
                // The owner asked for it: it stores what it gets (and asks again if this answer is lost). A
                // push of it under way must not take a refusal as proof that it never arrived.
                state.withLock { state in
                    state.unconfirmed.removeValue(forKey: id)
                    state.pushing[id]?.pulled = true
                }
                return .transfer(transfer)
            case .movedTo(let node): return .movedTo(node)
            case .notHeld: return .notHeld
            }
        case .done(let ring):
            state.withLock { $0.settled[peer] = ring }
            // A leaving member that pushed everything has finished its leave: nothing of it is left to pull.
            // (One whose drain timed out never says this, and stays `leaving`: its actors wait for it.)
            membership.change { $0.markDrained(peer) }
            return .acknowledged
        }
    }

    /// Both ends of a handoff must agree on the owner, so two views in flux cannot bounce an actor.
    private func requireOwner(_ id: ActorID, is node: NodeID) throws {
        let owner = membership.routing.owner(of: id, placement: directory.placement(of: id.typeName))?.node
        guard owner == node else {
            throw CallError(
                .nodeUnavailable, "\(nodeID) sees \(owner?.rawValue ?? "no member") as the owner of \(id), not \(node)",
                remoteCode: notOwnerCode)
        }
    }
}
