internal import FoundationEssentials
internal import NIOCore
internal import PlexCore
internal import PlexJournal
internal import PlexTransport
internal import PlexWire
internal import Synchronization

/// Handoff state a node keeps in memory.
struct HandoffState: Sendable {
    /// The ring each peer last said it finished pushing for (`done`).
    var settled: [NodeID: UInt64] = [:]
    /// Whether a push round runs, and whether another is wanted after it.
    var roundRunning = false
    var roundWanted = false
    /// Actors this node recorded as handed off whose transfer is not known to have landed (a push in flight,
    /// or one that failed with an unknown outcome). While any is left, this node does not say `done`: the
    /// receiver may not have the actor, and owners must still be able to pull it from here.
    var unconfirmed: [ActorID: NodeID] = [:]
}

/// The remote code of a handoff refused because the receiver does not own the actor in its own view.
let notOwnerCode = "handoff.notOwner"
/// The remote code of a handoff refused because the copy does not extend the receiver's (kept aside there).
let divergedCode = "handoff.diverged"

extension PlexNode: ActivationHost {
    // MARK: The new owner: making sure the latest state is here before activation

    /// Called before a durable actor recovers on this node. If this node does not hold the actor's state,
    /// asks whoever might (the node it handed the actor to, members ranked above it that left, and the
    /// previous owner if this node joined since), and stores what they hand over.
    ///
    /// - Throws: ``CallError`` `nodeUnavailable` when a member that may hold the state cannot be asked (the
    ///   caller retries later; activating from nothing could lose acknowledged state), `storageFailure`.
    func locate(_ id: ActorID) async throws {
        let holding = try await storage("look up \(id)") { try await self.journal.holding(of: id) }
        if holding.isHeld { return }
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
            guard let link = links.withLock({ $0[candidate] }), link.isConnected else {
                let status = membership.withLock { $0.members[candidate]?.status }
                if status == nil || status! >= .left {
                    // It handed everything off before leaving, or it was removed: nothing to ask.
                    if candidate == holding.movedTo { targetGone = true }
                    continue
                }
                throw CallError(
                    .nodeUnavailable, "\(candidate) may hold \(id) and is not connected; the call can be retried")
            }
            var request = Plexspaces_V1_HandoffRequest()
            request.pull.actor = id.description
            asked = true
            switch try await handoffCall(request, on: link).outcome {
            case .transfer(let message):
                let transfer = try ActorTransfer(message)
                let outcome = try await storage("store the handoff of \(id)") {
                    try await self.journal.adopt(transfer, from: candidate)
                }
                if case .diverged(let held) = outcome {
                    logDiverged(transfer, from: candidate, held: held)
                    throw CallError(
                        .nodeUnavailable,
                        "\(candidate) handed over a copy of \(id) that does not extend this node's; kept aside")
                }
                logger.info(
                    "actor pulled from its previous owner",
                    metadata: ["actor.id": "\(id)", "from": "\(candidate)", "epoch": "\(transfer.epoch)"])
                return
            case .movedTo(let next):
                candidates.append(NodeID(unchecked: next))
                forwardedTo.append(NodeID(unchecked: next))
            case .notHeld, .stored, .acknowledged, nil:
                continue
            }
        }
        let inFlight = forwardedTo.filter { node in
            node != nodeID && membership.withLock { $0.members[node]?.status } == .up
        }
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
            try await storage("reclaim \(id)") { try await self.journal.reclaim(id) }
        } else if asked {
            try await storage("record \(id)") { try await self.journal.recordHeld(id) }
        }
    }

    /// Takes back every actor this node handed to a member that was removed since: the copy here is the latest
    /// the cluster still has (what the actor did on the removed member is lost, as removal says), and it
    /// must reach the actor's owner instead of being skipped as handed away.
    func reclaimFromRemovedMembers() async throws {
        let removed = membership.withLock { $0.members.values.filter { $0.status == .removed }.map(\.nodeID) }
        for member in removed {
            for id in try await journal.actorsHanded(to: member) { try await reclaim(id, from: member) }
        }
    }

    private func reclaim(_ id: ActorID, from member: NodeID) async throws {
        logger.warning(
            "reclaiming an actor handed to a member that was removed since",
            metadata: ["actor.id": "\(id)", "to": "\(member)"])
        try await storage("reclaim \(id)") { try await self.journal.reclaim(id) }
    }

    /// Members that may hold `id`'s state, nearest first: members ranked above this node that are no longer
    /// up (they owned it before they left), then the members that are up below it (the owners before this
    /// node and others joined; with ring changes in quick succession it may still be further down), skipping
    /// those that said they finished pushing for the current ring.
    func pullCandidates(for id: ActorID) -> [NodeID] {
        let (members, settled) = (membership.withLock { $0.members }, handoff.withLock { $0.settled })
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

    /// Identifies the ring (its members' ids), so a `done` applies only to the ring it was sent for.
    func ringHash() -> UInt64 {
        StableHash.hash(membership.withLock { $0.ring.map(\.node.rawValue) }.joined(separator: ","))
    }

    // MARK: The previous owner: pushing actors to their new owners

    /// Asks for a push round soon; rounds never overlap, and requests during one start another after it.
    func scheduleHandOffRound() {
        guard running.load(ordering: .relaxed), joined.load(ordering: .relaxed) else { return }
        let start = handoff.withLock { state -> Bool in
            if state.roundRunning {
                state.roundWanted = true
                return false
            }
            state.roundRunning = true
            return true
        }
        guard start else { return }
        Task {
            // Let a burst of membership changes settle first.
            try? await Task.sleep(for: .milliseconds(100))
            repeat {
                handoff.withLock { $0.roundWanted = false }
                guard running.load(ordering: .relaxed) else { break }
                _ = await handOffRound(until: .max)
            } while handoff.withLock({ state in
                state.roundRunning = state.roundWanted
                return state.roundWanted
            })
        }
    }

    /// Pushes every durable actor this node holds but no longer owns to its owner, then tells every
    /// connected member it is done for this ring.
    /// - Returns: How many actors moved and how many could not (before `deadline`, monotonic ns).
    func handOffRound(until deadline: UInt64) async -> (moved: Int, failed: Int) {
        let held: [ActorID]
        do {
            try await reclaimFromRemovedMembers()
            held = try await journal.heldActors()
        } catch {
            logger.error("cannot list the actors to hand off", metadata: ["error": "\(error)"])
            return (0, 0)
        }
        let types = self.types.withLock { $0 }
        // `done` must name the ring the pushes were for: a ring that changes during the round gets a round
        // of its own (the change schedules one), and owners in it keep asking this node until then.
        let ring = ringHash()
        let table = routing.withLock { $0 }
        // Pushes whose outcome is unknown are tried again too (a repeated transfer), so `done` can follow.
        let unconfirmed = handoff.withLock { $0.unconfirmed }
        let heldSet = Set(held)
        let moving = (held + unconfirmed.keys.filter { !heldSet.contains($0) }).compactMap { id -> (ActorID, NodeID)? in
            guard let owner = table.owner(of: id, placement: types[id.typeName]?.placement ?? .pinned)?.node,
                owner != nodeID
            else { return nil }
            return (id, owner)
        }
        // A few at a time: each push is a round trip and a journal transaction on both ends.
        let pushed = await withTaskGroup(of: Bool.self) { group in
            var pushed: [Bool] = []
            for (index, (id, owner)) in moving.enumerated() {
                if index >= 16, let one = await group.next() { pushed.append(one) }
                group.addTask { Self.now() < deadline ? await self.push(id, to: owner) : false }
            }
            for await one in group { pushed.append(one) }
            return pushed
        }
        let result = (pushed.filter { $0 }.count, pushed.filter { !$0 }.count)
        // `done` tells owners they need not ask this node: only true once every push landed, this round's
        // and any earlier one's (a concurrent round must not vouch for a push still in flight).
        if result.1 == 0 && handoff.withLock({ $0.unconfirmed.isEmpty }) {
            var done = Plexspaces_V1_HandoffRequest()
            done.done.ring = ring
            for link in links.withLock({ Array($0.values) }) where link.isConnected {
                _ = try? await handoffCall(done, on: link)
            }
        }
        if !moving.isEmpty {
            logger.info("handoff round", metadata: ["moved": "\(result.0)", "failed": "\(result.1)"])
        }
        return result
    }

    /// Hands `id` to `owner`. Returns whether it is there (or was not here to move).
    func push(_ id: ActorID, to owner: NodeID) async -> Bool {
        do {
            // Checked before the tombstone is written: a tombstone whose transfer was never sent would leave
            // the actor's state where no owner looks for it.
            guard let link = links.withLock({ $0[owner] }), link.isConnected else { return false }
            let transfer: ActorTransfer
            let repeated: Bool
            switch try await handOffLocally(id, to: owner) {
            case .transfer(let first): (transfer, repeated) = (first, false)
            case .repeated(let again): (transfer, repeated) = (again, true)
            case .movedTo, .notHeld:
                // Handed to another member before (whose owner pulls it from there), or not here at all.
                handoff.withLock { _ = $0.unconfirmed.removeValue(forKey: id) }
                return true
            }
            handoff.withLock { $0.unconfirmed[id] = owner }
            var request = Plexspaces_V1_HandoffRequest()
            request.transfer = transfer.message
            do {
                _ = try await handoffCall(request, on: link)
            } catch let error as CallError where error.remoteCode == divergedCode {
                // The owner holds another history and kept this copy aside: reclaiming would fork the actor.
                logger.error(
                    "handoff refused: the owner holds another history of the actor and kept this copy aside",
                    metadata: [
                        "actor.id": "\(id)", "to": "\(owner)", "lineage": "\(transfer.lineage.map { "\($0)" } ?? "-")",
                    ])
                handoff.withLock { _ = $0.unconfirmed.removeValue(forKey: id) }
                return true
            } catch let error as CallError where error.remoteCode == notOwnerCode && !repeated {
                // Refused outright, and never sent before: it was not stored there, so the copy here is the
                // latest again. (After an earlier transfer, which a pull may have taken, the receiver may
                // have moved on with it: reclaiming then would fork the actor, so the tombstone stays.)
                logger.info(
                    "handoff refused; keeping the actor", metadata: ["actor.id": "\(id)", "to": "\(owner)"])
                try? await journal.reclaim(id)
                handoff.withLock { _ = $0.unconfirmed.removeValue(forKey: id) }
                return false
            }
            handoff.withLock { _ = $0.unconfirmed.removeValue(forKey: id) }
            return true
        } catch {
            // Unknown outcome: the tombstone stays, and the owner pulls the actor when it activates it. (A
            // transfer over max_frame_size was not sent at all; it fails alone and the link stays up.)
            logger.log(
                level: (error as? CallError)?.code == .codecFailure ? .error : .warning,
                "handoff failed", metadata: ["actor.id": "\(id)", "to": "\(owner)", "error": "\(error)"])
            return false
        }
    }

    /// Deactivates `id` here (after the message in hand; durable actors checkpoint) and records it as handed
    /// to `node`, returning what to send.
    ///
    /// The tombstone is written while this holds the actor's turn, and the activation leaves the table only
    /// after it: a message queued behind the handoff finds the tombstone when it activates the actor again,
    /// so nothing is journaled here that the transfer does not carry.
    func handOffLocally(_ id: ActorID, to node: NodeID) async throws -> HandOffStart {
        let keysSince =
            Int64(Date().timeIntervalSince1970 * 1000)
            - Int64(clamping: configuration.idempotencyRetention.clampedNanoseconds / 1_000_000)
        let begin = { () async throws -> HandOffStart in
            try await self.storage("hand off \(id)") {
                try await self.journal.beginHandOff(id, to: node, keysSince: keysSince)
            }
        }
        guard let entry = types.withLock({ $0[id.typeName] }) else { return try await begin() }
        while true {
            let activation = self.activation(for: id, entry: entry)
            await activation.mailbox.acquire()
            defer { activation.mailbox.release() }
            // Only the activation in the table excludes others; one that was replaced while this waited does not.
            guard table.existing(id) === activation else { continue }
            await activation.deactivateLocked()
            defer { table.remove(activation) }
            return try await begin()
        }
    }

    // MARK: Frames

    /// A `handoff` frame arrived: a transfer, a pull or a `done`. Answers on the same connection.
    func handleHandoff(_ frame: Wire.Frame, on connection: any Connection) {
        let peer = connection.peer
        guard peer.role == .node else {
            logger.error("closing a client connection that sent a handoff frame", metadata: ["peer": "\(peer)"])
            return connection.close()
        }
        guard let request = decodeOrClose(Plexspaces_V1_HandoffRequest.self, frame, on: connection) else { return }
        let correlation = frame.correlationID
        Task {
            do {
                let reply = Wire.body(try await self.answer(request, from: peer.nodeID))
                try self.requireFits(reply, code: .codecFailure, "the handoff reply to \(peer.nodeID)")
                connection.send(Wire.Frame(kind: .reply, correlationID: correlation, body: reply))
            } catch {
                let failure = error as? CallError ?? CallError(.storageFailure, "\(error)")
                connection.send(Self.errorFrame(failure, correlationID: correlation))
            }
        }
    }

    private func answer(_ request: Plexspaces_V1_HandoffRequest, from peer: NodeID) async throws
        -> Plexspaces_V1_HandoffReply
    {
        var reply = Plexspaces_V1_HandoffReply()
        switch request.action {
        case .transfer(let message):
            let transfer = try ActorTransfer(message)
            try requireOwner(transfer.actor, is: nodeID)
            // A stale activation here (there should be none) goes first, so it cannot write over the transfer.
            if let activation = table.existing(transfer.actor) { await deactivate(activation) }
            let outcome = try await storage("store the handoff of \(transfer.actor)") {
                try await self.journal.adopt(transfer, from: peer)
            }
            if case .diverged(let held) = outcome {
                logDiverged(transfer, from: peer, held: held)
                throw CallError(
                    .storageFailure, "\(nodeID) holds another history of \(transfer.actor) and kept this copy aside",
                    remoteCode: divergedCode)
            }
            reply.stored = outcome == .stored
            logger.debug(
                reply.stored ? "actor handed to this node" : "ignored a handoff of an epoch this node has passed",
                metadata: ["actor.id": "\(transfer.actor)", "from": "\(peer)", "epoch": "\(transfer.epoch)"])
        case .pull(let pull):
            let id: ActorID
            do { id = try ActorID(parsing: pull.actor) } catch {
                throw CallError(.invalidRequest, "handoff pull of an invalid actor id '\(pull.actor)'")
            }
            try requireOwner(id, is: peer)
            var answer = try await handOffLocally(id, to: peer)
            if case .movedTo(let target) = answer, membership.withLock({ $0.members[target]?.status }) == .removed {
                // Handed to a member that was removed since: the copy here is the latest the cluster has.
                try await reclaim(id, from: target)
                answer = try await handOffLocally(id, to: peer)
            }
            switch answer {
            case .transfer(let transfer), .repeated(let transfer):
                reply.transfer = transfer.message
                // The owner asked for it: it stores what it gets (and asks again if this answer is lost).
                handoff.withLock { _ = $0.unconfirmed.removeValue(forKey: id) }
            case .movedTo(let node): reply.movedTo = node.rawValue
            case .notHeld: reply.notHeld = true
            }
        case .done(let done):
            handoff.withLock { $0.settled[peer] = done.ring }
            // A leaving member that pushed everything has finished its leave: nothing of it is left to pull.
            // (One whose drain timed out never says this, and stays `leaving`: its actors wait for it.)
            let changes = updateMembership { $0.markDrained(peer) }
            apply(changes)
            reply.acknowledged = true
        case nil:
            throw CallError(.invalidRequest, "empty handoff request")
        }
        return reply
    }

    private func logDiverged(_ transfer: ActorTransfer, from peer: NodeID, held: Lineage) {
        logger.error(
            "refused a copy of an actor that does not extend the history here; kept it aside (plex journal stats)",
            metadata: [
                "actor.id": "\(transfer.actor)", "from": "\(peer)", "epoch": "\(transfer.epoch)",
                "lineage": "\(transfer.lineage.map { "\($0)" } ?? "-")",
                "sequences": "\(transfer.sequences.map { "\($0)" } ?? "-")", "held.lineage": "\(held.id)",
                "held.epoch": "\(held.epoch)", "held.last": "\(held.lastSequence)",
            ])
    }

    /// Both ends of a handoff must agree on the owner, so two views in flux cannot bounce an actor.
    private func requireOwner(_ id: ActorID, is node: NodeID) throws {
        let placement = types.withLock { $0[id.typeName] }?.placement ?? .pinned
        let owner = owner(of: id, placement: placement)
        guard owner == node else {
            throw CallError(
                .nodeUnavailable, "\(nodeID) sees \(owner?.rawValue ?? "no member") as the owner of \(id), not \(node)",
                remoteCode: notOwnerCode)
        }
    }

    func handoffCall(_ request: Plexspaces_V1_HandoffRequest, on link: PeerLink) async throws
        -> Plexspaces_V1_HandoffReply
    {
        let (deadline, _) = deadline(nil)
        let body = Wire.body(request)
        try requireFits(body, code: .codecFailure, "the handoff request to \(link.peer)")
        let frame = try await link.call(kind: .handoff, flags: [], body: body, deadline: deadline)
        switch frame.kind {
        case .reply: return try Wire.decode(Plexspaces_V1_HandoffReply.self, from: frame.body)
        case .errorReply: throw Self.callError(from: frame)
        default: throw CallError(.codecFailure, "unexpected \(frame.kind) frame in reply to a handoff")
        }
    }

    private func storage<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as CallError {
            throw error
        } catch {
            throw CallError(.storageFailure, "cannot \(what): \(error)")
        }
    }
}
