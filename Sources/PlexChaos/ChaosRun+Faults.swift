internal import PlexTestKit

/// The faults: drawn from the seed, injected one after another at random moments until the run's time is up.
extension ChaosRun {
    /// Injects planned faults until the configured duration has passed (the fault in progress then finishes,
    /// so every fault is whole).
    func runFaults() async {
        var plan = FaultPlan(
            seed: configuration.seed, nodes: configuration.nodes, kinds: configuration.faults,
            unreachableAfter: configuration.unreachableAfter)
        let end = ContinuousClock.now + configuration.duration
        while true {
            let (pause, fault) = plan.next()
            guard ContinuousClock.now + pause < end else { break }
            try? await Task.sleep(for: pause)
            await inject(fault)
            record.withLock { $0.faults[fault.kind, default: 0] += 1 }
        }
        let remaining = end - ContinuousClock.now
        if remaining > .zero { try? await Task.sleep(for: remaining) }
    }

    /// Injects one fault and undoes it.
    func inject(_ fault: PlannedFault) async {
        let id = cluster.ids
        switch fault {
        case .kill(let node, let downFor):
            log("fault: kill -9 \(id[node]), down for \(downFor)")
            await cluster.kill(node)
            try? await Task.sleep(for: downFor)
            await cluster.launch(node)
            await cluster.waitUntilReady(node)
        case .wipe(let node, let downFor):
            log("fault (sabotage): kill -9 \(id[node]) and delete its data directory, down for \(downFor)")
            await cluster.kill(node)
            await cluster.wipe(node)
            try? await Task.sleep(for: downFor)
            await cluster.launch(node)
            await cluster.waitUntilReady(node)
        case .stop(let node, let stoppedFor):
            log("fault: SIGSTOP \(id[node]) for \(stoppedFor)")
            await cluster.suspend(node)
            try? await Task.sleep(for: stoppedFor)
            await cluster.resume(node)
        case .cold(let order, let gaps):
            log("fault: whole cluster killed, restarted in order \(order.map { id[$0] })")
            await cluster.killAll()
            for (node, gap) in zip(order, gaps) {
                try? await Task.sleep(for: gap)
                await cluster.launch(node)
            }
            await cluster.waitUntilAllReady(within: .seconds(30))
        case .seedless(let alone, let aloneFor, let order, let gaps):
            log("fault: whole cluster killed, \(id[alone]) restarted alone for \(aloneFor) while its seeds are down")
            await cluster.killAll()
            await cluster.launch(alone)
            try? await Task.sleep(for: aloneFor)
            for (node, gap) in zip(order, gaps) {
                try? await Task.sleep(for: gap)
                await cluster.launch(node)
            }
            await cluster.waitUntilAllReady(within: .seconds(30))
        case .partition(let shape, let lasting, let blackhole, let removing):
            log("fault: partition, \(shape), for \(lasting)")
            let until = ContinuousClock.now + lasting
            await cluster.cut(shape, blackhole: blackhole)
            if let member = removing, case .split(let a, let b) = shape {
                let through = member == a ? b : a
                await attemptRemoval(of: member, through: through, before: until)
            }
            let left = until - ContinuousClock.now
            if left > .zero { try? await Task.sleep(for: left) }
            await cluster.healLinks()
        }
    }

    /// Once `through` sees `member` unreachable (or at `deadline`), runs `plex cluster remove member` through
    /// it and records the answer.
    private func attemptRemoval(of member: Int, through: Int, before deadline: ContinuousClock.Instant) async {
        let id = cluster.ids
        let caller = callers[through]
        let seen: Void? = try? await eventually(
            "\(id[through]) sees \(id[member]) unreachable", within: deadline - ContinuousClock.now,
            poll: .milliseconds(100)
        ) {
            await caller.status()?.members.first { $0.nodeID == id[member] }?.state == "unreachable"
        }
        let outcome = await cluster.remove(member, through: through)
        let view = seen == nil ? " (it never saw it unreachable)" : ""
        let line = "remove \(id[member]) through \(id[through])\(view): \(outcome)"
        log("fault: \(line)")
        record.withLock { $0.removals.append(line) }
    }
}
