internal import Logging
internal import PlexCore
internal import PlexJournal
internal import Synchronization

/// A node's activation directory: the actor types it hosts, its live activations, and their end (idle
/// deactivation, eviction past the activation limit, release after a ring change, deactivation at stop).
final class ActivationDirectory: Sendable {
    let runtime: NodeRuntime
    /// The registered types and what activations need: rarely written, read when a call arrives.
    private let registry = Mutex(Registry())
    /// The live activations (their own lock: the hot path).
    private let table = ActivationTable()
    /// Activations that asked to end, and whether a task is ending them (``retireSoon(_:)``).
    private let retiring = Mutex(Retiring())

    private struct Retiring {
        var asked: [any AnyActivation] = []
        var running = false
    }

    private struct Registry: Sendable {
        var types: [String: any AnyActorType] = [:]
        /// Actor types refused at registration (``PlexNode/start(_:transport:logger:setup:)`` fails with them).
        var refused: [NodeError] = []
        var bindings: Bindings?
    }

    /// The roles an activation needs, bound when the node starts.
    private struct Bindings: @unchecked Sendable {
        // Set once before the first activation; the host outlives every activation (the node owns it).
        unowned let host: any ActivationHost
        let router: ContextRouter
    }

    init(runtime: NodeRuntime) {
        self.runtime = runtime
    }

    /// Binds what activations need: `host` makes sure a durable actor's latest state is here before it
    /// recovers (handoff), `router` carries the calls actors make through their context.
    func bind(host: any ActivationHost, router: any ActorCallRouter & AnyObject) {
        registry.withLock {
            $0.bindings = Bindings(host: host, router: ContextRouter(router: router, logger: runtime.logger))
        }
    }

    /// The node stopped: references actors kept from their contexts fail their calls from now on.
    func unbindRouter() {
        registry.withLock { $0.bindings?.router }?.unbind()
    }

    // MARK: Types

    /// Registers `A`, unless it is durable with failover placement or its name is registered for another Swift
    /// type (refused, see ``refusedTypes``).
    func register<A: VirtualActor>(_ type: A.Type, make: @escaping @Sendable () -> A) {
        if case .durable = A.durability, A.placement == .failover {
            return refuse(
                A.typeName,
                "a durable type cannot use failover placement (it would run on both sides of a partition and fork "
                    + "its history); use pinned placement")
        }
        let metrics = ActorMetrics(typeName: A.typeName, callLog: runtime.callLog)
        let taken = registry.withLock { registry -> Bool in
            if let existing = registry.types[A.typeName], !(existing is ActorTypeEntry<A>) { return true }
            registry.types[A.typeName] = ActorTypeEntry<A>(make: make, metrics: metrics)
            return false
        }
        // A live activation is found by the name alone (``activation(for:of:)``): one name, one Swift type.
        if taken { refuse(A.typeName, "the name is already registered for another Swift type than \(A.self)") }
    }

    private func refuse(_ typeName: String, _ reason: String) {
        let error = NodeError(.invalidConfiguration, "actor type '\(typeName)': \(reason)")
        runtime.logger.error("actor type refused", metadata: ["error": "\(error)"])
        registry.withLock { $0.refused.append(error) }
    }

    /// The types refused at registration.
    var refusedTypes: [NodeError] { registry.withLock { $0.refused } }

    /// The registered type named `typeName`.
    func entry(named typeName: String) -> (any AnyActorType)? {
        registry.withLock { $0.types[typeName] }
    }

    /// The registration of `A`.
    /// - Throws: ``CallError`` `unknownActorType` when `A` is not registered here (or another Swift type is,
    ///   under its name).
    func entry<A: VirtualActor>(for type: A.Type) throws(CallError) -> ActorTypeEntry<A> {
        guard let entry = registry.withLock({ $0.types[A.typeName] }) as? ActorTypeEntry<A> else {
            throw CallError(.unknownActorType, "\(A.typeName) is not registered on \(runtime.nodeID)")
        }
        return entry
    }

    /// The placement of the type named `typeName` (pinned when it is not registered here).
    func placement(of typeName: String) -> PlacementStrategy {
        entry(named: typeName)?.placement ?? .pinned
    }

    /// Every registered type by name.
    var allTypes: [String: any AnyActorType] { registry.withLock { $0.types } }

    // MARK: Activations

    var count: Int { table.count }

    /// The live activation of `id`, if any.
    func existing(_ id: ActorID) -> (any AnyActivation)? { table.existing(id) }

    /// Every live activation.
    func all() -> [any AnyActivation] { table.all() }

    /// The activation of `id`, made (not yet activated: that happens in its first turn) if there is none.
    func activation(for id: ActorID, entry: any AnyActorType) -> any AnyActivation {
        var created = false
        let activation = table.activation(for: id) {
            created = true
            let bound = registry.withLock { $0.bindings }
            return entry.makeActivation(
                id: id, now: NodeRuntime.now(), journal: runtime.journal,
                retentionMilliseconds: runtime.retentionMilliseconds, turns: runtime.turns, host: bound?.host,
                tracing: runtime.tracing,
                makeContext: Self.context(for: id, nodeID: runtime.nodeID, router: bound?.router))
        }
        if created && table.count > runtime.configuration.activation.maximumActivations { evictExcess() }
        return activation
    }

    /// The typed activation of `id`.
    /// - Throws: ``CallError`` `unknownActorType` when the live activation is of another Swift type (``register``
    ///   refuses a second Swift type under a name, so only a caller holding a stale entry sees it).
    func activation<A: VirtualActor>(for id: ActorID, typed entry: ActorTypeEntry<A>) throws(CallError) -> Activation<A>
    {
        // The common case finds it live, without making an existential of `entry` (a witness table lookup).
        try typed(table.existing(id) ?? activation(for: id, entry: entry), as: A.self)
    }

    /// The activation of `id` as an `A`, looking up the registered type only to make one: a live activation
    /// was made from the type registered under its name, and a name stays with one Swift type (``register``),
    /// so a local ask skips a lock, a string hash and a dynamic cast.
    func activation<A: VirtualActor>(for id: ActorID, of type: A.Type) throws(CallError) -> Activation<A> {
        if let live = table.existing(id) { return try typed(live, as: A.self) }
        return try typed(activation(for: id, entry: entry(for: type)), as: A.self)
    }

    @inline(__always)
    private func typed<A: VirtualActor>(_ activation: any AnyActivation, as type: A.Type) throws(CallError)
        -> Activation<A>
    {
        guard let activation = activation as? Activation<A> else {
            throw CallError(
                .unknownActorType,
                "\(activation.id) is active on \(runtime.nodeID) as another Swift type than \(A.self)")
        }
        return activation
    }

    private static func context(
        for id: ActorID, nodeID: NodeID, router: ContextRouter?
    ) -> @Sendable (CallID?, String?, Bool) -> ActorContext {
        let router: any ActorCallRouter = router ?? OfflineRouter()
        return { callID, idempotencyKey, replaying in
            ActorContext(
                id: id, nodeID: nodeID, callID: callID, idempotencyKey: idempotencyKey, isReplaying: replaying,
                router: router)
        }
    }

    /// Deactivates `activation` in its turn, after the messages queued before, if `stillWanted` holds once the
    /// turn is held (an idle activation chosen before a message came is kept: that message used it).
    func deactivate(
        _ activation: any AnyActivation, checkpoint: DeactivationCheckpoint = .ifBehind,
        onlyIf stillWanted: (@Sendable (any AnyActivation) -> Bool)? = nil
    ) async {
        await activation.mailbox.acquire()
        if let stillWanted, !stillWanted(activation) {
            activation.mailbox.release()
            return
        }
        await activation.deactivateLocked(checkpoint: checkpoint)
        table.remove(activation)
        activation.mailbox.release()
    }

    /// How many activations ``deactivate(_:checkpoint:)-([any AnyActivation],_)`` ends at a time.
    static var deactivationWidth: Int { 64 }

    /// Deactivates `activations`, up to ``deactivationWidth`` at a time: the checkpoints durable ones write then
    /// share the journal's commits. (One at a time, a sweep of thousands of finished activations waited for a
    /// commit each and fell behind the rate they finished at.)
    func deactivate(
        _ activations: [any AnyActivation], checkpoint: DeactivationCheckpoint = .ifBehind,
        onlyIf stillWanted: (@Sendable (any AnyActivation) -> Bool)? = nil
    ) async {
        await withTaskGroup(of: Void.self) { group in
            var next = activations.makeIterator()
            for _ in 0..<Self.deactivationWidth {
                guard let activation = next.next() else { break }
                group.addTask { await self.deactivate(activation, checkpoint: checkpoint, onlyIf: stillWanted) }
            }
            while await group.next() != nil {
                guard let activation = next.next() else { continue }
                group.addTask { await self.deactivate(activation, checkpoint: checkpoint, onlyIf: stillWanted) }
            }
        }
    }

    /// Deactivates `id` in its turn, runs `body` while it still holds the turn (the activation leaves the table
    /// after), and returns what `body` returns. Without a registered type, only runs `body`.
    ///
    /// A message queued behind this finds what `body` did (a handoff's tombstone) when it activates the
    /// actor again.
    func deactivate<T>(_ id: ActorID, then body: () async throws -> T) async throws -> T {
        guard let entry = entry(named: id.typeName) else { return try await body() }
        while true {
            let activation = self.activation(for: id, entry: entry)
            await activation.mailbox.acquire()
            defer { activation.mailbox.release() }
            // Only the activation in the table excludes others; one that was replaced while this waited does not.
            guard table.existing(id) === activation else { continue }
            await activation.deactivateLocked(checkpoint: .ifBehind)
            defer { table.remove(activation) }
            return try await body()
        }
    }

    /// Cancels the queued job that holds each activation's turn now (the node stops).
    func cancelTurns() {
        for activation in table.all() { activation.mailbox.cancelJobInHand() }
    }

    /// Deactivates every activation (the node stops gracefully).
    func deactivateAll() async {
        await deactivate(table.all())
    }

    /// Deactivates the activations `isOwnedElsewhere` names (after a ring change), so an actor is never
    /// active on two nodes.
    func release(where isOwnedElsewhere: @escaping @Sendable (ActorID, PlacementStrategy) -> Bool) {
        let types = allTypes
        let moved = table.all().filter { isOwnedElsewhere($0.id, types[$0.id.typeName]?.placement ?? .pinned) }
        guard !moved.isEmpty else { return }
        runtime.tasks.start { await self.deactivate(moved) }
    }

    private func evictExcess() {
        let limit = runtime.configuration.activation.maximumActivations
        let victims = table.leastRecentlyUsed(table.count - limit + max(1, limit / 10))
        runtime.tasks.start { await self.deactivate(victims, checkpoint: .ifFarBehind) }
    }

    /// How long an activation that asked to end (``Activation/deactivateOnIdle()``) stays: long enough for the
    /// reads that tend to follow a workflow's end to find it, and for many to end together.
    static var retirementDelay: Duration { .milliseconds(100) }

    /// Ends `activation` within ``retirementDelay`` (from the first of a batch to ask) unless a message comes
    /// first, with every other activation that asked meanwhile. Before this, such activations waited for the
    /// idle sweep (up to a second): a node finishing 10,000 workflows a second held tens of thousands of them,
    /// and removing them from a table that large took a tenth of its CPU.
    ///
    /// One task at a time gathers the batches (each batch's deactivations run in a task of their own). An
    /// activation is ended only if no message used it since it asked, checked again once its turn is held (a
    /// message queued meanwhile, a signal to an unloading workflow, keeps it); one busy when its batch comes is
    /// looked at with the next.
    func retireSoon(_ activation: any AnyActivation) {
        let start = retiring.withLock { retiring in
            retiring.asked.append(activation)
            defer { retiring.running = true }
            return !retiring.running
        }
        guard start else { return }
        let started = runtime.tasks.start { [self] in
            while true {
                try? await Task.sleep(for: Self.retirementDelay)
                let asked = retiring.withLock { retiring in
                    defer { retiring.asked.removeAll() }
                    if retiring.asked.isEmpty || Task.isCancelled { retiring.running = false }
                    return retiring.asked
                }
                // Stopping: the node ends every activation itself.
                guard !asked.isEmpty, !Task.isCancelled else { return }
                var seen = Set<ObjectIdentifier>()
                var idle: [any AnyActivation] = []
                var busy: [any AnyActivation] = []
                for activation in asked where activation.lastUsed == 0 {
                    guard seen.insert(ObjectIdentifier(activation)).inserted else { continue }
                    if activation.mailbox.isIdle { idle.append(activation) } else { busy.append(activation) }
                }
                // One whose turn is held (a handler that asked, then went on working) is looked at with the next
                // batch: waiting for its turn here would hold up the rest, and a node's stop.
                if !busy.isEmpty { retiring.withLock { $0.asked.append(contentsOf: busy) } }
                // In a task of its own: a batch's deactivations wait for their last writes' commits, and the
                // next batch must not wait for them (ending batches in turn fell behind 10,000 a second).
                runtime.tasks.start { [self, idle] in
                    await deactivate(idle, checkpoint: .ifFarBehind, onlyIf: { $0.lastUsed == 0 })
                }
            }
        }
        if !started { retiring.withLock { $0 = Retiring() } }  // the node stops, and ends every activation itself
    }

    /// Deactivates activations idle for longer than ``ActivationConfiguration/idleTimeout``.
    func idleLoop() async {
        let idle = runtime.configuration.activation.idleTimeout
        let idleNanoseconds = idle.clampedNanoseconds
        let period = min(max(idle / 4, .milliseconds(10)), .seconds(1))
        while !Task.isCancelled {
            try? await Task.sleep(for: period)
            let now = NodeRuntime.now()
            guard now > idleNanoseconds else { continue }
            let cutoff = now - idleNanoseconds
            await deactivate(table.idle(since: cutoff), checkpoint: .ifFarBehind, onlyIf: { $0.lastUsed < cutoff })
        }
    }

    /// How many messages wait for the live activation of `id` (nil if it is not active).
    func queuedMessages(for id: ActorID) -> Int? {
        table.existing(id)?.mailbox.waiting
    }
}

/// The node's router as actors' contexts hold it: one small object per node, retained by each context
/// (a plain retain per message). It holds the node's dispatcher until the node stops (``unbind()``); a
/// reference an actor kept beyond that (in a task of its own) then fails its calls with `nodeUnavailable`
/// instead of reaching a node that is gone.
final class ContextRouter: ActorCallRouter, Sendable {
    private let target: Mutex<(any ActorCallRouter & AnyObject)?>
    /// The node's logger (with its `node.id`), for ``ActorContext/logger``.
    let logger: Logger?

    init(router: any ActorCallRouter & AnyObject, logger: Logger) {
        self.target = Mutex(router)
        self.logger = logger
    }

    /// The node stopped: calls fail from now on (and the dispatcher is no longer kept alive from here).
    func unbind() {
        target.withLock { $0 = nil }
    }

    private var router: any ActorCallRouter {
        get throws(CallError) {
            guard let router = target.withLock({ $0 }) else {
                throw CallError(.nodeUnavailable, "the node this actor ran on has stopped")
            }
            return router
        }
    }

    func ask<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request, options: CallOptions)
        async throws -> A.Response
    {
        try await router.ask(type, id, request, options: options)
    }

    func tell<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request) async throws {
        try await router.tell(type, id, request)
    }
}
