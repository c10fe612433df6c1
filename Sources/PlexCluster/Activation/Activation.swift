internal import DequeModule
internal import PlexCore
internal import PlexJournal
internal import PlexWire
internal import Synchronization
internal import Tracing

/// What the activation table holds, without the actor's type.
protocol AnyActivation: AnyObject, Sendable {
    var id: ActorID { get }
    var mailbox: Mailbox { get }
    /// When the activation last started a message (monotonic nanoseconds).
    var lastUsed: UInt64 { get }
    /// Runs the deactivation hook and marks the activation finished; the caller holds the turn.
    func deactivateLocked(checkpoint: DeactivationCheckpoint) async
}

/// Whether a deactivating durable actor writes a checkpoint (so its next activation, here or at a new owner,
/// replays little). Failing to write one loses nothing: the entries are in the journal.
enum DeactivationCheckpoint: Sendable {
    /// When any message was journaled since its last one: the node stops or the actor moves to another node,
    /// where a compact journal and a short transfer matter.
    case ifBehind
    /// Only when many were (``Activation/checkpointAtDeactivationAfter``): an idle or evicted activation. A few
    /// messages replay as fast as a checkpoint loads, and a node that finishes thousands of short-lived actors
    /// a second (workflow instances) would otherwise spend a commit on each as its idle sweep ends them.
    case ifFarBehind
}

/// What an activation needs from the node that hosts it.
protocol ActivationHost: AnyObject, Sendable {
    /// Makes sure this node's journal holds the latest state of durable actor `id` before it recovers, given
    /// where this node stood with it (`holding`, read just now); returns whether it stored a state handed over
    /// by another node (what was read with `holding` is then out of date).
    func locate(_ id: ActorID, holding: ActorHolding) async throws -> Bool
    /// `activation` asked to end once idle (``Activation/deactivateOnIdle()``): end it soon, with others that
    /// asked, unless a message comes first.
    func retireSoon(_ activation: any AnyActivation)
}

extension ActivationHost {
    func retireSoon(_ activation: any AnyActivation) {}
}

/// Why an activation could not take a message.
enum ActivationFailure: Error {
    /// The activation was deactivated while the message waited; look it up again.
    case deactivated
}

/// One live instance of a virtual actor: its behaviour, its state and its turn.
final class Activation<A: VirtualActor>: AnyActivation, ActivationControl, @unchecked Sendable {
    // Everything mutable is guarded by `mailbox`: only the holder of the turn touches it.
    enum Phase { case new, active, deactivated }

    let id: ActorID
    let mailbox: Mailbox
    let behaviour: A
    var state: A.State
    var phase: Phase = .new
    private let lastUsedStorage: Atomic<UInt64>
    let makeContext: @Sendable (CallID?, String?, Bool) -> ActorContext
    /// The owner's journal, for durable types.
    let journal: Journal?
    /// The last journal sequence this activation wrote or replayed.
    var sequence: UInt64 = 0
    /// Messages handled since the last checkpoint.
    var sinceCheckpoint = 0
    /// Outcomes of calls that carried an idempotency key, oldest first (bounded; a durable actor finds
    /// older ones in its journal).
    var remembered: [String: Remembered<A.Response>] = [:]
    var rememberedOrder: Deque<String> = []
    /// Set when one of this activation's journal writes failed; the next message recovers first.
    let needsRecovery = Atomic<Bool>(false)
    /// The last journal write this activation queued (durable types).
    var lastWrite: PendingWrite?
    /// How far back (milliseconds) the journal is searched for an idempotency key.
    let retentionMilliseconds: Int64
    /// Makes sure this node's journal has the actor's latest state before recovery (a durable actor that
    /// moved here pulls it from its previous owner); `nil` outside a cluster. Unowned: the node outlives its
    /// activations, and a reference costs no allocation per activation, where a closure would.
    unowned let host: (any ActivationHost)?
    /// The type's instruments; `nil` for an offline replay.
    let metrics: ActorMetrics?
    /// The node's spans; `nil` when nothing traces (and for an offline replay).
    let tracing: CallTracing?

    init(
        id: ActorID, behaviour: A, now: UInt64, journal: Journal?, retentionMilliseconds: Int64,
        turns: TurnTasks, host: (any ActivationHost)? = nil, metrics: ActorMetrics? = nil,
        tracing: CallTracing? = nil, makeContext: @escaping @Sendable (CallID?, String?, Bool) -> ActorContext
    ) {
        self.host = host
        self.metrics = metrics
        self.tracing = tracing
        self.mailbox = Mailbox(turns: turns)
        self.retentionMilliseconds = retentionMilliseconds
        self.id = id
        self.behaviour = behaviour
        self.state = A.initialState(for: id)
        self.lastUsedStorage = Atomic(now)
        self.journal = journal
        self.makeContext = makeContext
    }

    var lastUsed: UInt64 { lastUsedStorage.load(ordering: .relaxed) }

    /// Marks the activation idle since ever and asks the host to end it soon, unless a message comes first.
    func deactivateOnIdle() {
        lastUsedStorage.store(0, ordering: .relaxed)
        host?.retireSoon(self)
    }

    /// Runs one message in this activation's turn; the caller holds the turn. The one place a message meets
    /// its handler, whatever brought it (a local or remote call, a tell, a reminder): the deadline and the
    /// caller's cancellation are checked, the actor activated (a durable one recovered), a repeated
    /// idempotency key answered from what was kept, the handler run and journaled, and every error mapped to
    /// a ``CallError``.
    ///
    /// For a durable type, `write` is set to the journal write of the message (also when the handler threw):
    /// release the turn, then wait for it (``OutputGate``) before the reply or error leaves, so none leaves
    /// before its effect is durable.
    ///
    /// A message whose caller was cancelled before its handler finished counts as never run: it is not
    /// journaled (replay is never cancelled, and could take another path) and a durable actor drops what the
    /// handler changed, recovering from its journal before its next message, as after a crash; a retry with
    /// the same idempotency key runs it.
    /// - Throws: ``ActivationFailure/deactivated``, or a ``CallError``: `timeout` (the deadline passed before
    ///   the turn came), `cancelled`, `remoteFailure` for what the actor threw, `nodeUnavailable` when a
    ///   durable actor's state cannot be fetched from its previous owner yet, `storageFailure` when it cannot
    ///   recover or journal.
    ///
    /// - Parameter trace: The caller's trace context when it came over the wire; otherwise the task's own is
    ///   the turn span's parent.
    func run(
        _ request: A.Request, callID: CallID, idempotencyKey: String? = nil, deadline: Deadline,
        trace: ServiceContext? = nil, write: inout PendingWrite?
    ) async throws -> A.Response {
        guard let tracing else {
            guard let metrics, metrics.isActive else {
                // Nothing observes the turn: no timing, and no frame of its own (going through `measured`, whose
                // guard does the same, cost a local ask 5 %).
                return try await turn(
                    request, callID: callID, idempotencyKey: idempotencyKey, deadline: deadline,
                    now: NodeRuntime.now(), write: &write)
            }
            return try await measured(
                request, metrics: metrics, callID: callID, idempotencyKey: idempotencyKey, deadline: deadline,
                write: &write)
        }
        let span = tracing.startTurn(id, callID: callID, parent: trace)
        defer { span.end() }
        do {
            // The handler's own calls (through its context) are children of this turn.
            let response = try await ServiceContext.withValue(span.context) {
                try await measured(
                    request, metrics: metrics, callID: callID, idempotencyKey: idempotencyKey, deadline: deadline,
                    write: &write)
            }
            if let write { tracing.commit(write, of: id, context: span.context) }
            return response
        } catch ActivationFailure.deactivated {
            span.attributes["plex.turn.retried"] = true  // it runs again, in a span of its own
            throw ActivationFailure.deactivated
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
            throw error
        }
    }

    /// ``run(_:callID:idempotencyKey:deadline:trace:write:)`` without its span.
    private func measured(
        _ request: A.Request, metrics: ActorMetrics?, callID: CallID, idempotencyKey: String?, deadline: Deadline,
        write: inout PendingWrite?
    ) async throws -> A.Response {
        let now = NodeRuntime.now()
        guard let metrics, metrics.isActive else {
            return try await turn(
                request, callID: callID, idempotencyKey: idempotencyKey, deadline: deadline, now: now, write: &write)
        }
        metrics.turnStarted(waiting: mailbox.waiting)
        do {
            let response = try await turn(
                request, callID: callID, idempotencyKey: idempotencyKey, deadline: deadline, now: now, write: &write)
            metrics.turnEnded(id, since: now, now: NodeRuntime.now(), error: nil, committing: write)
            return response
        } catch let error as CallError {
            metrics.turnEnded(id, since: now, now: NodeRuntime.now(), error: error)
            throw error
        } catch {
            metrics.turnRetried()
            throw error
        }
    }

    /// ``run(_:callID:idempotencyKey:deadline:write:)`` without its instruments.
    private func turn(
        _ request: A.Request, callID: CallID, idempotencyKey: String?, deadline: Deadline, now: UInt64,
        write: inout PendingWrite?
    ) async throws -> A.Response {
        guard !deadline.hasPassed(at: now) else {
            throw CallError(.timeout, "\(id) did not start the call before its deadline")
        }
        guard !Task.isCancelled else { throw CallError(.cancelled, "\(id): the call was cancelled before it ran") }
        // An earlier message's entry failed to commit: the state here includes it, so start over from the journal.
        if journal != nil, needsRecovery.load(ordering: .relaxed), needsRecovery.exchange(false, ordering: .relaxed),
            phase == .active
        {
            phase = .new
        }
        switch phase {
        case .deactivated: throw ActivationFailure.deactivated
        case .new: try await activate()
        case .active: break
        }
        lastUsedStorage.store(now, ordering: .relaxed)
        if let idempotencyKey, let earlier = try await answer(idempotencyKey, write: &write) { return earlier }
        if journal != nil, A.isReadOnly(request) {
            return try await runReadOnly(request, callID: callID, idempotencyKey: idempotencyKey, write: &write)
        }
        var context = makeContext(callID, idempotencyKey, false)
        // The handler's outward effects wait for the earlier messages' entries (the output gate).
        let effects = journal == nil ? nil : EffectLog(after: lastWrite)
        context.effects = effects
        context.requestType = A.Request.self
        context.activation = self
        let response: A.Response
        do {
            response = try await behaviour.handle(request, state: &state, context: context)
        } catch {
            if Task.isCancelled { throw abandonCancelled() }
            // The actor's own error (remoteFailure). A durable actor journals the failed message too: the
            // handler may have changed the state before throwing, and replay must reproduce that.
            let failure = CallError.from(handlerError: error, actor: id)
            if let effects {
                write = try persist(request, nil, effects: effects, callID: callID, idempotencyKey: idempotencyKey)
            }
            if let idempotencyKey { remember(idempotencyKey, .failed(failure, write)) }
            throw failure
        }
        // A handler that saw the cancellation may have returned early: what it did is not what replay would do.
        if journal != nil, Task.isCancelled { throw abandonCancelled() }
        if let effects {
            write = try persist(request, response, effects: effects, callID: callID, idempotencyKey: idempotencyKey)
        }
        if let idempotencyKey { remember(idempotencyKey, .response(response, write)) }
        return response
    }

    /// Runs a read-only message of a durable actor: on a copy of the state, not journaled; its reply waits for
    /// the earlier messages' entries (`write` is set to the last one).
    private func runReadOnly(
        _ request: A.Request, callID: CallID, idempotencyKey: String?, write: inout PendingWrite?
    ) async throws -> A.Response {
        var copy = state
        var context = makeContext(callID, idempotencyKey, false)
        context.activation = self
        do {
            let response = try await behaviour.handle(request, state: &copy, context: context)
            write = lastWrite
            return response
        } catch {
            write = lastWrite
            throw CallError.from(handlerError: error, actor: id)
        }
    }

    /// Activates the actor: a durable one first makes sure this node holds its latest state, and recovers.
    /// Never in a cancelled task: replay must run exactly as the journaled messages did.
    private func activate() async throws {
        if let journal {
            // One read of the journal gives where this node stands with the actor and what to recover from.
            var read: ActorRecovery
            do {
                read = try await journal.recovery(of: id)
            } catch {
                throw CallError(.storageFailure, "cannot read \(id) from journal \(journal.path): \(error)")
            }
            do {
                // Read again if this node stored a transfer of any actor of the shard since: a pull by `locate`,
                // or a push, which is stored without the actor's turn (and may be this actor's).
                let pulled = try await host?.locate(id, holding: read.holding) == true
                if pulled || journal.adoptions(of: id) != read.adoptions {
                    read = try await journal.recovery(of: id)
                }
            } catch let error as CallError {
                throw error
            } catch {
                throw CallError(.nodeUnavailable, "cannot fetch the state of \(id) from its previous owner: \(error)")
            }
            guard !Task.isCancelled else { throw CallError(.cancelled, "\(id): the call was cancelled before it ran") }
            try await recover(from: read)
            // Cancelled while replaying: a handler that saw it may have replayed differently. Not kept.
            guard !Task.isCancelled else { throw CallError(.cancelled, "\(id): the call was cancelled before it ran") }
        }
        do {
            try await behaviour.activate(state: &state, context: makeContext(nil, nil, false))
        } catch {
            throw CallError.from(handlerError: error, actor: id)
        }
        phase = .active
        metrics?.activated.increment()
    }

    /// The error of a message whose caller was cancelled before its handler finished; a durable actor
    /// recovers from its journal before its next message.
    private func abandonCancelled() -> CallError {
        if journal != nil { phase = .new }
        return CallError(.cancelled, "\(id): the call was cancelled while its handler ran; it was not kept")
    }

    func deactivateLocked(checkpoint: DeactivationCheckpoint) async {
        guard phase != .deactivated else { return }
        let wasActive = phase == .active
        phase = .deactivated
        guard wasActive else { return }
        metrics?.deactivated.increment()
        await behaviour.deactivate(state: &state, context: makeContext(nil, nil, false))
        switch checkpoint {
        case .ifBehind: try? await checkpointIfBehind()
        case .ifFarBehind:
            if sinceCheckpoint >= Self.checkpointAtDeactivationAfter { try? await checkpointIfBehind() }
        }
    }

    /// How many messages past its checkpoint an idle durable actor must be to write one when it deactivates.
    static var checkpointAtDeactivationAfter: Int { 8 }
}
