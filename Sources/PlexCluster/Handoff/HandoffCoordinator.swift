internal import FoundationEssentials
internal import Logging
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
    /// Actors whose push is under way, and whether their receiver pulled them meanwhile. A pull answered
    /// after the push recorded its tombstone hands the receiver the very copy the push carries: the push
    /// may then no longer conclude from a refusal, or from a frame never sent, that the receiver lacks it.
    var pushing: [ActorID: PushesUnderWay] = [:]
    /// Transfers being stored here now (a push's answer from its owner check to its store, a pull of `locate`),
    /// and how many were stored so far: a round says `done` only if none ran beside it, since an actor stored
    /// after the round read what this node holds is not in that round (and may not be this node's to keep).
    var adopting = 0
    var adopted: UInt64 = 0
    /// The ring the last pass of a round was for, set once it decided whether to say `done` (for tests and
    /// diagnostics).
    var lastPassRing: UInt64?

    struct PushesUnderWay {
        /// How many (a leave's round may run beside a scheduled one).
        var count = 0
        var pulled = false
    }
}

/// The remote code of a handoff refused because the receiver does not own the actor in its own view.
let notOwnerCode = "handoff.notOwner"
/// The remote code of a handoff refused because the copy does not extend the receiver's (kept aside there).
let divergedCode = "handoff.diverged"

/// A node's handoff role: moves durable actors between owners when the ring changes.
///
/// The previous owner pushes what it holds but no longer owns (push rounds, after every ring change and
/// when a member connects); the new owner, asked for an actor it does not hold, pulls it first
/// (``locate(_:)``, before the actor recovers); `done` tells owners that nothing more is coming from a member
/// for a ring. The answers to other members' handoff frames are in `HandoffCoordinator+Frames.swift`.
final class HandoffCoordinator: Sendable {
    let runtime: NodeRuntime
    let membership: Membership
    let directory: ActivationDirectory
    let state = Mutex(HandoffState())

    init(runtime: NodeRuntime, membership: Membership, directory: ActivationDirectory) {
        self.runtime = runtime
        self.membership = membership
        self.directory = directory
    }

    var nodeID: NodeID { runtime.nodeID }
    var logger: Logger { runtime.logger }
    var journal: Journal { runtime.journal }

    /// The ring changed: a `done` was for the ring before, so every member pushes again for this one.
    func ringChanged() {
        state.withLock { $0.settled = [:] }
        scheduleRound()
    }

    /// Identifies the ring (its members' ids), so a `done` applies only to the ring it was sent for.
    func ringHash() -> UInt64 {
        StableHash.hash(membership.read { $0.ring.map(\.node.rawValue) }.joined(separator: ","))
    }

    // MARK: The previous owner: pushing actors to their new owners

    /// Asks for a push round soon; rounds never overlap, and requests during one start another after it.
    func scheduleRound() {
        guard runtime.isRunning, membership.isJoined else { return }
        let start = state.withLock { state -> Bool in
            if state.roundRunning {
                state.roundWanted = true
                return false
            }
            state.roundRunning = true
            return true
        }
        guard start else { return }
        let started = runtime.tasks.start {
            // Let a burst of membership changes settle first.
            try? await Task.sleep(for: .milliseconds(100))
            repeat {
                self.state.withLock { $0.roundWanted = false }
                guard self.runtime.isRunning, !Task.isCancelled else {
                    self.state.withLock { $0.roundRunning = false }
                    return
                }
                _ = await self.round(until: .max)
            } while self.state.withLock({ state in
                state.roundRunning = state.roundWanted
                return state.roundWanted
            })
        }
        if !started { state.withLock { $0.roundRunning = false } }
    }

    /// Pushes every durable actor this node holds but no longer owns to its owner, then tells every
    /// connected member it is done for this ring.
    /// - Returns: How many actors moved and how many could not (before `deadline`, monotonic ns).
    func round(until deadline: UInt64) async -> (moved: Int, failed: Int) {
        var moved = 0
        while true {
            let adoptedBefore = state.withLock { $0.adopted }
            let (pass, quiet) = await pass(until: deadline, adoptedBefore: adoptedBefore)
            moved += pass.moved
            guard !quiet, pass.failed == 0, NodeRuntime.now() < deadline, runtime.isRunning else {
                return (moved, pass.failed)
            }
            // A transfer was being stored beside the pass: what it stored was not in it, so no `done` was said.
            // Again shortly, until a pass runs alone.
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    /// One pass of a round: pushes what this node holds but does not own, and says `done` if every push landed
    /// and no transfer was being stored here meanwhile (`quiet`).
    private func pass(until deadline: UInt64, adoptedBefore: UInt64) async -> (
        result: (moved: Int, failed: Int), quiet: Bool
    ) {
        let held: [ActorID]
        do {
            try await reclaimFromRemovedMembers()
            held = try await journal.heldActors()
        } catch {
            logger.error("cannot list the actors to hand off", metadata: ["error": "\(error)"])
            return ((0, 0), true)
        }
        let types = directory.allTypes
        // `done` must name the ring the pushes were for: a ring that changes during the round gets a round
        // of its own (the change schedules one), and owners in it keep asking this node until then.
        let ring = ringHash()
        let table = membership.routing
        // Pushes whose outcome is unknown are tried again too (a repeated transfer), so `done` can follow.
        let unconfirmed = state.withLock { $0.unconfirmed }
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
                group.addTask { NodeRuntime.now() < deadline ? await self.push(id, to: owner) : false }
            }
            for await one in group { pushed.append(one) }
            return pushed
        }
        let result = (pushed.filter { $0 }.count, pushed.filter { !$0 }.count)
        // `done` tells owners they need not ask this node: only true once every push landed, this round's
        // and any earlier one's (a concurrent round must not vouch for a push still in flight), and no
        // transfer was stored here beside the pass.
        let quiet = state.withLock { $0.adopting == 0 && $0.adopted == adoptedBefore }
        state.withLock { $0.lastPassRing = ring }
        if result.1 == 0 && quiet && state.withLock({ $0.unconfirmed.isEmpty }) {
            for link in membership.allLinks where link.isConnected {
                _ = try? await call(.done(ring: ring), on: link)
            }
        }
        if !moving.isEmpty {
            logger.info("handoff round", metadata: ["moved": "\(result.0)", "failed": "\(result.1)"])
        }
        return (result, quiet)
    }

    /// Runs `body`, which may store a transfer, counted in ``HandoffState/adopting``; `stored` says whether it
    /// did.
    func adopting<T>(_ body: () async throws -> T, stored: (T) -> Bool) async throws -> T {
        state.withLock { $0.adopting += 1 }
        do {
            let value = try await body()
            let done = stored(value)
            state.withLock { state in
                state.adopting -= 1
                if done { state.adopted &+= 1 }
            }
            return value
        } catch {
            state.withLock { $0.adopting -= 1 }
            throw error
        }
    }

    /// Hands `id` to `owner`. Returns whether it is there (or was not here to move).
    func push(_ id: ActorID, to owner: NodeID) async -> Bool {
        do {
            // Checked before the tombstone is written: a tombstone whose transfer was never sent would leave
            // the actor's state where no owner looks for it.
            guard let link = membership.existingLink(to: owner), link.isConnected else { return false }
            state.withLock { $0.pushing[id, default: .init()].count += 1 }
            defer {
                state.withLock { state in
                    state.pushing[id]?.count -= 1
                    if state.pushing[id]?.count == 0 { state.pushing[id] = nil }
                }
            }
            let transfer: ActorTransfer
            let repeated: Bool
            switch try await handOffLocally(id, to: owner) {
            case .transfer(let first): (transfer, repeated) = (first, false)
            case .repeated(let again): (transfer, repeated) = (again, true)
            case .movedTo, .notHeld:
                // Handed to another member before (whose owner pulls it from there), or not here at all.
                state.withLock { _ = $0.unconfirmed.removeValue(forKey: id) }
                return true
            }
            state.withLock { $0.unconfirmed[id] = owner }
            /// Whether the owner may have this copy from before: an earlier transfer, or a pull answered since
            /// the tombstone. Then neither a refusal nor a frame never sent means it lacks the copy, and
            /// reclaiming it here would fork the actor (the owner may have run calls on it).
            func mayHaveIt() -> Bool { repeated || state.withLock { $0.pushing[id]?.pulled == true } }
            do {
                _ = try await call(.transfer(transfer), on: link)
            } catch let notSent as PeerLink.NotSent where !mayHaveIt() {
                // Never sent (the connection went, or no slot came), and never sent before: the owner cannot
                // have it, so the copy here is the latest again. (A repeat may have landed the first time.)
                logger.info(
                    "handoff not sent; keeping the actor",
                    metadata: ["actor.id": "\(id)", "to": "\(owner)", "reason": "\(notSent.reason)"])
                try await journal.reclaim(id)
                state.withLock { _ = $0.unconfirmed.removeValue(forKey: id) }
                return false
            } catch let error as CallError where error.remoteCode == divergedCode {
                // The owner holds another history and kept this copy aside: reclaiming would fork the actor.
                logger.error(
                    "handoff refused: the owner holds another history of the actor and kept this copy aside",
                    metadata: [
                        "actor.id": "\(id)", "to": "\(owner)", "lineage": "\(transfer.lineage.map { "\($0)" } ?? "-")",
                    ])
                state.withLock { _ = $0.unconfirmed.removeValue(forKey: id) }
                return true
            } catch let error as CallError where error.remoteCode == notOwnerCode && !mayHaveIt() {
                // Refused outright, never sent before and not pulled: it was not stored there, so the copy
                // here is the latest again. (After an earlier transfer or a pull, the receiver may have moved
                // on with it: reclaiming then would fork the actor, so the tombstone stays.)
                logger.info(
                    "handoff refused; keeping the actor", metadata: ["actor.id": "\(id)", "to": "\(owner)"])
                try? await journal.reclaim(id)
                state.withLock { _ = $0.unconfirmed.removeValue(forKey: id) }
                return false
            }
            state.withLock { _ = $0.unconfirmed.removeValue(forKey: id) }
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
        let keysSince = Int64(Date().timeIntervalSince1970 * 1000) - runtime.retentionMilliseconds
        return try await directory.deactivate(id) {
            try await self.journalOperation("hand off \(id)") {
                try await self.journal.beginHandOff(id, to: node, keysSince: keysSince)
            }
        }
    }

    /// Sends a handoff request to the member at the other end of `link` and returns its answer.
    /// - Throws: ``CallError``: the member's, or `codecFailure` for a request over `max_frame_size`;
    ///   ``PeerLink/NotSent`` when the request was never sent.
    func call(_ request: HandoffRequest, on link: PeerLink) async throws -> HandoffReply {
        let body = request.body
        try runtime.requireFits(body, code: .codecFailure, "the handoff request to \(link.peer)")
        // Not cancellable: a transfer or a pull whose answer the other end committed must be seen through.
        let frame = try await link.call(
            kind: .handoff, flags: [], body: body, deadline: runtime.deadline(after: nil), cancellable: false)
        switch frame.kind {
        case .reply: return try HandoffReply(frame: frame)
        case .errorReply: throw Wire.callError(from: frame)
        default: throw CallError(.codecFailure, "unexpected \(frame.kind) frame in reply to a handoff")
        }
    }

    /// Runs a journal operation named `what`; an error that is not a ``CallError`` becomes `storageFailure`.
    func journalOperation<T>(_ what: String, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as CallError {
            throw error
        } catch {
            throw CallError(.storageFailure, "cannot \(what): \(error)")
        }
    }
}
