internal import PlexCore
internal import PlexJournal

extension HandoffCoordinator: ActivationHost {
    /// Ends `activation` soon (the directory does, with others that asked).
    func retireSoon(_ activation: any AnyActivation) {
        directory.retireSoon(activation)
    }

    // MARK: The new owner: making sure the latest state is here before activation

    /// Called before a durable actor recovers on this node. If this node does not hold the actor's state,
    /// asks whoever might (the node it handed the actor to, members ranked above it that left, and the
    /// previous owner if this node joined since), and stores what they hand over. `holding` is where this
    /// node stood with the actor when its activation read the journal; returns whether a handed-over state
    /// was stored.
    ///
    /// - Throws: ``CallError`` `nodeUnavailable` when a member that may hold the state cannot be asked (the
    ///   caller retries later; activating from nothing could lose acknowledged state), `storageFailure`.
    func locate(_ id: ActorID, holding: ActorHolding) async throws -> Bool {
        if holding.isHeld { return false }
        var candidates = holding.movedTo.map { [$0] } ?? pullCandidates(for: id)
        var asked = false
        var targetGone = false
        /// Members another member said it handed the actor to: its state is on its way there.
        var forwardedTo: [NodeID] = []
        var index = 0
        while index < candidates.count && index < 8 {
            let candidate = candidates[index]
            index += 1
            guard candidate != nodeID else { continue }
            guard let link = membership.existingLink(to: candidate), link.isConnected else {
                let status = membership.status(of: candidate)
                if status == nil || status! >= .left {
                    // It handed everything off before leaving, or it was removed: nothing to ask.
                    if candidate == holding.movedTo { targetGone = true }
                    continue
                }
                throw CallError(
                    .nodeUnavailable, "\(candidate) may hold \(id) and is not connected; the call can be retried")
            }
            asked = true
            // The pull and its store, counted: the ring may change meanwhile, and a round beside them must not
            // say `done` without what they store.
            let answer: (HandoffReply, AdoptOutcome?) = try await adopting {
                switch try await call(.pull(id), on: link) {
                case .transfer(let transfer):
                    let outcome = try await journalOperation("store the handoff of \(id)") {
                        try await self.journal.adopt(transfer, from: candidate)
                    }
                    return (HandoffReply.transfer(transfer), outcome)
                case let other: return (other, nil)
                }
            } stored: { (answer: (HandoffReply, AdoptOutcome?)) in
                answer.1 == .stored
            }
            switch answer.0 {
            case .transfer(let transfer):
                guard let outcome = answer.1 else { continue }
                if case .diverged(let held) = outcome {
                    logDiverged(transfer, from: candidate, held: held)
                    throw CallError(
                        .nodeUnavailable,
                        "\(candidate) handed over a copy of \(id) that does not extend this node's; kept aside")
                }
                logger.info(
                    "actor pulled from its previous owner",
                    metadata: ["actor.id": "\(id)", "from": "\(candidate)", "epoch": "\(transfer.epoch)"])
                return true
            case .movedTo(let next):
                candidates.append(next)
                forwardedTo.append(next)
            case .notHeld, .stored, .acknowledged:
                continue
            }
        }
        let inFlight = forwardedTo.filter { node in node != nodeID && membership.status(of: node) == .up }
        if let target = inFlight.first {
            // A member handed it on and its receiver does not have it yet: a transfer is in flight.
            // Activating from what is here (or from nothing) would fork the actor; the caller retries.
            throw CallError(
                .nodeUnavailable, "\(id) is being handed to \(target); the call can be retried")
        }
        if let movedTo = holding.movedTo, asked || targetGone {
            // The node it was handed to says it never got it, or it is gone (removed): the copy here is the
            // latest this cluster still has. Reclaiming raises the epoch above the copy that node had.
            logger.warning(
                targetGone
                    ? "reclaiming an actor from a member that is gone"
                    : "reclaiming an actor whose handoff never arrived",
                metadata: ["actor.id": "\(id)", "to": "\(movedTo)", "epoch": "\(holding.epoch + 1)"])
            try await journalOperation("reclaim \(id)") { try await self.journal.reclaim(id) }
        } else if asked {
            try await journalOperation("record \(id)") { try await self.journal.recordHeld(id) }
        }
        return false
    }

    /// Takes back every actor this node handed to a member that was removed since: the copy here is the latest
    /// the cluster still has (what the actor did on the removed member is lost, as removal says), and it
    /// must reach the actor's owner instead of being skipped as handed away.
    func reclaimFromRemovedMembers() async throws {
        let removed = membership.read { $0.members.values.filter { $0.status == .removed }.map(\.nodeID) }
        for member in removed {
            for id in try await journal.actorsHanded(to: member) { try await reclaim(id, from: member) }
        }
    }

    func reclaim(_ id: ActorID, from member: NodeID) async throws {
        logger.warning(
            "reclaiming an actor handed to a member that was removed since",
            metadata: ["actor.id": "\(id)", "to": "\(member)"])
        try await journalOperation("reclaim \(id)") { try await self.journal.reclaim(id) }
    }

    /// Members that may hold `id`'s state, nearest first: members ranked above this node that are no longer
    /// up (they owned it before they left), then the members that are up below it (the owners before this
    /// node and others joined; with ring changes in quick succession it may still be further down), skipping
    /// those that said they finished pushing for the current ring.
    func pullCandidates(for id: ActorID) -> [NodeID] {
        let (members, settled) = (membership.read { $0.members }, state.withLock { $0.settled })
        let ring = ringHash()
        let actorHash = Placement.hash(id)
        let ranked = members.values.sorted { a, b in
            let scoreA = StableHash.finalize(Placement.hash(a.nodeID) ^ actorHash)
            let scoreB = StableHash.finalize(Placement.hash(b.nodeID) ^ actorHash)
            return scoreA != scoreB ? scoreA > scoreB : a.nodeID < b.nodeID
        }
        var candidates: [NodeID] = []
        var passedSelf = false
        for member in ranked {
            if member.nodeID == nodeID {
                passedSelf = true
            } else if !passedSelf {
                // A member that left (or is leaving) is skipped only once it said it finished pushing for this
                // very ring: one whose drain timed out still holds actors, which must not start from nothing
                // here (the call fails with `nodeUnavailable` until it rejoins or is removed).
                if member.status == .leaving && settled[member.nodeID] != ring { candidates.append(member.nodeID) }
            } else if member.status == .up, settled[member.nodeID] != ring {
                candidates.append(member.nodeID)
            }
        }
        return candidates
    }

    func logDiverged(_ transfer: ActorTransfer, from peer: NodeID, held: Lineage) {
        logger.error(
            "refused a copy of an actor that does not extend the history here; kept it aside (plex journal stats)",
            metadata: [
                "actor.id": "\(transfer.actor)", "from": "\(peer)", "epoch": "\(transfer.epoch)",
                "lineage": "\(transfer.lineage.map { "\($0)" } ?? "-")",
                "sequences": "\(transfer.sequences.map { "\($0)" } ?? "-")", "held.lineage": "\(held.id)",
                "held.epoch": "\(held.epoch)", "held.last": "\(held.lastSequence)",
            ])
    }
}
