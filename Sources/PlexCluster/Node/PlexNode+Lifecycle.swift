internal import FoundationEssentials
internal import PlexCore
internal import PlexJournal

extension PlexNode: NodeLifecycle {
    /// Leaves the cluster gracefully: announces the leave, hands every durable actor it holds to its new
    /// owner, and stops.
    ///
    /// Other nodes take this node out of the ring when they hear the announcement, so its actors are
    /// placed elsewhere from then on. Each durable actor finishes the message in hand, checkpoints, and moves
    /// with its retained idempotency keys; new owners that are asked for an actor first pull it from here.
    /// Actors not moved within ``MembershipConfiguration/drainTimeout`` stay in this node's journal (the
    /// log says how many) and come back when the node rejoins.
    /// - Returns: How many durable actors moved, and how many could not.
    @discardableResult
    public func leave() async -> (moved: Int, failed: Int) {
        let result = await drain()
        await shutdown()
        return result
    }

    /// The first half of ``leave()``: announces the leave and hands off durable actors, but keeps running.
    func drain() async -> (moved: Int, failed: Int) {
        guard runtime.isRunning else { return (0, 0) }
        membership.change { $0.setSelfStatus(.leaving) }
        membership.broadcastGossip()
        let deadline = NodeRuntime.now() &+ configuration.membership.drainTimeout.clampedNanoseconds
        let result = await handoff.round(until: deadline)
        if result.failed > 0 {
            logger.warning(
                "leaving with durable actors not handed off; they stay in this node's journal",
                metadata: ["failed": "\(result.failed)"])
        }
        return result
    }

    /// Returns when the node has stopped (by ``leave()``, ``shutdown()``, or an operator's `plex node stop`).
    public func waitUntilStopped() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let stoppedAlready = life.withLock { life -> Bool in
                guard life.stopWaiters != nil else { return true }
                life.stopWaiters!.append(continuation)
                return false
            }
            if stoppedAlready { continuation.resume() }
        }
    }

    /// Stops the node without announcing a leave: deactivates activations and closes every connection.
    ///
    /// Returns once nothing the node started still runs: its loops, the work it started in the background
    /// (forwarded calls, handoff rounds, reminder deliveries) and its actors' turns are cancelled and awaited.
    public func shutdown() async {
        await stop(deactivating: true)
    }

    /// Stops the node the way a crash would look from outside and to its journal: the journal is abandoned
    /// as `kill -9` leaves it (``Journal/abandon()``: nothing queued is committed, nothing is filed, no
    /// write-ahead log checkpoint), no deactivation hooks and no checkpoints, connections dropped. For tests
    /// that simulate a crash in process.
    package func halt() async {
        await stop(deactivating: false)
    }

    private func stop(deactivating: Bool) async {
        guard runtime.beginStopping() else { return }
        // A crash stops the journal first, at once; what runs on until the tasks end cannot make it durable.
        if !deactivating { await journal.abandon() }
        // The loops end, and no new background work starts; work under way (a forwarded call, a handoff
        // round) goes on until the connections close.
        runtime.loops.cancelAll()
        runtime.tasks.close()
        if deactivating {
            // Each actor deactivates after the messages queued for it.
            await directory.deactivateAll()
        } else {
            // A crash: running handlers are cancelled, queued messages fail at once.
            stopTurns()
        }
        await transport.shutdown()
        membership.delegates.unbind()
        // Calls in flight on links fail now, so background work waiting for them ends.
        membership.detachAll()
        await runtime.tasks.cancelAndWait()
        await runtime.loops.cancelAndWait()
        stopTurns()
        await runtime.turns.waitUntilNoneRuns()
        directory.unbindRouter()
        if deactivating { await journal.close() }
        let waiters = life.withLock { life in
            life.dataLock = nil
            return life.stopWaiters.take() ?? []
        }
        logger.info("node stopped")
        for waiter in waiters { waiter.resume() }
    }

    /// Cancels the actors' turns that run, and every one that starts from now on.
    private func stopTurns() {
        runtime.turns.stop()
        directory.cancelTurns()
    }

    /// Stops serving at once because the cluster says this process must not (it was removed while it ran, or
    /// its identity belongs to a later incarnation), rather than run on as a second cluster.
    func stopServing(_ error: NodeError) {
        let first = life.withLock { life -> Bool in
            guard life.stopReason == nil else { return false }
            life.stopReason = error
            return true
        }
        guard first else { return }
        logger.critical("stopping: \(error.message)")
        runtime.tasks.start { await self.halt() }
    }
}

extension PlexNode: MembershipObserver {
    func ringChanged() {
        // An actor is never active on two nodes: activations this node no longer owns are deactivated.
        let routing = membership.routing
        let selfID = nodeID
        directory.release { id, placement in routing.owner(of: id, placement: placement)?.node != selfID }
        handoff.ringChanged()
    }

    func handOffSoon() { handoff.scheduleRound() }

    func mustStop(_ error: NodeError) { stopServing(error) }
}

extension PlexNode {
    /// Hourly, deletes journal entries kept past their checkpoint only for idempotency keys that have
    /// now expired.
    func pruneLoop() async {
        guard !journal.keepsHistory else { return }
        let retention = runtime.retentionMilliseconds
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
}
