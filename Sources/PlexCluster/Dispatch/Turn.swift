internal import PlexCore
internal import PlexJournal
internal import PlexWire

/// One message for an actor, as every path hands it to its turn: a local ask or tell, an inbound call or
/// tell, a reminder (and later, a workflow step).
struct TurnMessage<A: VirtualActor>: Sendable {
    var request: A.Request
    var callID: CallID
    var idempotencyKey: String?
    /// When the caller stops waiting: a message whose turn comes later fails with `timeout` without running.
    var deadline: Deadline
}

/// What a turn came to.
enum TurnOutcome<Response: Sendable>: Sendable {
    /// The handler ran, or a repeated idempotency key found an earlier outcome: the result, with the journal
    /// write it must wait for before it leaves (durable types; ``OutputGate``).
    case finished(Result<Response, CallError>, PendingWrite?)
    /// The activation was deactivated while the message waited: run it on the next activation, if this node
    /// still owns the actor.
    case deactivated
}

extension Activation {
    /// Runs one message in this activation's turn; the caller holds the turn. The one place a message meets
    /// its handler: the deadline is checked, the actor activated (a durable one recovered), a repeated
    /// idempotency key answered from what was kept, the handler run and journaled, and every error mapped
    /// to a ``CallError``.
    func run(_ message: TurnMessage<A>) async -> TurnOutcome<A.Response> {
        let now = NodeRuntime.now()
        guard !message.deadline.hasPassed(at: now) else {
            return .finished(.failure(CallError(.timeout, "\(id) did not start the call before its deadline")), nil)
        }
        guard !Task.isCancelled else {
            return .finished(.failure(CallError(.cancelled, "\(id): the call was cancelled before it ran")), nil)
        }
        var write: PendingWrite?
        do {
            let response = try await handleLocked(
                message.request, callID: message.callID, idempotencyKey: message.idempotencyKey, now: now,
                write: &write)
            return .finished(.success(response), write)
        } catch ActivationFailure.deactivated {
            return .deactivated
        } catch let error as CallError {
            return .finished(.failure(error), write)
        } catch {
            return .finished(.failure(CallError.from(handlerError: error, actor: id)), write)
        }
    }
}

extension CallDispatcher {
    /// Runs `message` on this node's activation of `id`, waiting for the turn in the caller's own task (a
    /// local ask, a reminder); returns once the outcome is durable.
    ///
    /// - Parameter limit: How many messages may wait before this one is refused with `overloaded`: the
    ///   node's mailbox limit for a new call; `.max` for the node's own work.
    /// - Throws: ``CallError``: the handler's (`remoteFailure`), `timeout`, `overloaded`, `storageFailure`, and
    ///   `nodeUnavailable` when the actor moved away while the message waited.
    func runHere<A: VirtualActor>(
        _ entry: ActorTypeEntry<A>, _ id: ActorID, _ message: TurnMessage<A>, admitting limit: Int
    ) async throws(CallError) -> A.Response {
        var limit = limit
        while true {
            let activation = try directory.activation(for: id, typed: entry)
            if case .full(let first) = await activation.mailbox.acquire(admitting: limit) {
                throw mailboxFull(id, first: first)
            }
            limit = .max  // admitted: a retry after a deactivation is not refused
            let outcome = await activation.run(message)
            // The turn is free again; the outcome waits for its journal entry (durable types).
            activation.mailbox.release()
            switch outcome {
            case .deactivated:
                try requireStillHere(id, placement: A.placement)
            case .finished(let result, let write):
                try await OutputGate.wait(for: write, actor: id)
                return try result.get()
            }
        }
    }

    /// Queues `message` for this node's activation of `id` (an inbound call or tell, a local tell) and
    /// returns at once: it runs in the actor's turn on a drain task (on `executor`, the connection's event
    /// loop for inbound frames), and `completion` gets the outcome once it may leave, from the journal's
    /// thread for a durable type, so the actor takes its next message while this one commits.
    ///
    /// - Parameter call: The inbound call this message is, so that its `cancel` frame skips it or cancels its
    ///   handler.
    /// - Returns: Whether it was admitted; a refused message never runs and `completion` is never called.
    @discardableResult
    func enqueueHere<A: VirtualActor>(
        _ entry: ActorTypeEntry<A>, _ id: ActorID, _ message: TurnMessage<A>, admitting limit: Int,
        on executor: (any TaskExecutor)? = nil, call: InboundCall? = nil,
        completion: @escaping @Sendable (Result<A.Response, CallError>) -> Void
    ) throws(CallError) -> Mailbox.Admission {
        let activation = try directory.activation(for: id, typed: entry)
        return activation.mailbox.enqueue(
            { [self] in
                if let call, !call.begin(in: activation.mailbox) {
                    // Its caller gave up (a `cancel` frame) while it waited: it never runs.
                    return completion(.failure(CallError(.cancelled, "\(id): the call was cancelled before it ran")))
                }
                let outcome = await activation.run(message)
                // Before the turn moves on: a `cancel` that comes later must not reach the next job.
                call?.end()
                switch outcome {
                case .deactivated:
                    // Deactivated while queued (idle, evicted, or moved by a ring change): run it here again
                    // only if this node still owns the actor; admitted once already, it is not refused now.
                    do throws(CallError) {
                        try requireStillHere(id, placement: A.placement)
                        try enqueueHere(
                            entry, id, message, admitting: .max, on: executor, call: call, completion: completion)
                    } catch {
                        completion(.failure(error))
                    }
                case .finished(let result, let write):
                    OutputGate.whenDurable(write, actor: id) { failure in
                        completion(failure.map { .failure($0) } ?? result)
                    }
                }
            }, admitting: limit, on: executor)
    }

    /// Fails unless this node still owns `id` (a message that waited while its activation went away).
    private func requireStillHere(_ id: ActorID, placement: PlacementStrategy) throws(CallError) {
        guard case .local = try? route(id, placement: placement) else {
            throw CallError(.nodeUnavailable, "\(id) moved while the call waited; the ring changed")
        }
    }
}
