internal import PlexCore
internal import PlexJournal
internal import PlexWire

/// The two ways a message is admitted to its actor's turn on this node, both ending in ``Activation/run``: the
/// caller waits for the turn in its own task (a local ask, a reminder), or the message is queued and runs on
/// the mailbox's drain task (an inbound call or tell, a local tell).
///
/// Both retry once the activation went away while the message waited (if this node still owns the actor),
/// and both hold the outcome until its journal write is durable (``OutputGate``). They pass the request and
/// its call's fields as they are, with no wrapper: on this path every generic value costs a metadata lookup.
/// An inbound call is queued by ``ActorTypeEntry/enqueueEncoded(_:json:deadline:in:on:call:admitting:completion:)``,
/// the same job as ``enqueueHere(_:_:_:callID:idempotencyKey:deadline:admitting:on:call:completion:)`` with the
/// request decoded and the reply encoded inside it; a shared job taking decode and encode closures would cost
/// two closure contexts per inbound call, so the two are kept side by side (change both together).
extension CallDispatcher {
    /// Runs a message on this node's activation of `id`, waiting for the turn in the caller's own task;
    /// returns once the outcome is durable.
    ///
    /// - Parameter limit: How many messages may wait before this one is refused with `overloaded`: the
    ///   node's mailbox limit for a new call; `.max` for the node's own work.
    /// - Throws: ``CallError``: the handler's (`remoteFailure`), `timeout`, `cancelled`, `overloaded`,
    ///   `storageFailure`, `unknownActorType` when `A` is not registered here, and `nodeUnavailable` when the
    ///   actor moved away while the message waited.
    func runHere<A: VirtualActor>(
        _ type: A.Type, _ id: ActorID, _ request: A.Request, callID: CallID, idempotencyKey: String?,
        deadline: Deadline, admitting limit: Int
    ) async throws -> A.Response {
        var limit = limit
        while true {
            let activation = try directory.activation(for: id, of: type)
            if case .full(let first) = await activation.mailbox.acquire(admitting: limit) {
                throw mailboxFull(id, first: first)
            }
            limit = .max  // admitted: a retry after a deactivation is not refused
            var write: PendingWrite?
            let response: A.Response
            do {
                defer { activation.mailbox.release() }
                response = try await activation.run(
                    request, callID: callID, idempotencyKey: idempotencyKey, deadline: deadline, write: &write)
            } catch ActivationFailure.deactivated {
                try requireStillHere(id, placement: A.placement)
                continue
            } catch let error as CallError {
                try await OutputGate.wait(for: write, actor: id)  // an error reply waits for its entry too
                throw error
            } catch {
                throw CallError.from(handlerError: error, actor: id)
            }
            // The turn is free again; the reply waits for its journal entry (durable types).
            if write != nil { try await OutputGate.wait(for: write, actor: id) }
            return response
        }
    }

    /// Queues a message for this node's activation of `id` and returns at once: it runs in the actor's turn
    /// on a drain task (on `executor`, the connection's event loop for inbound frames), and `completion` gets
    /// the outcome once it may leave, from the journal's thread for a durable type, so the actor takes its
    /// next message while this one commits.
    ///
    /// - Parameter call: The inbound call this message is, so that its `cancel` frame skips it or cancels its
    ///   handler.
    /// - Returns: Whether it was admitted; a refused message never runs and `completion` is never called.
    @discardableResult
    func enqueueHere<A: VirtualActor>(
        _ entry: ActorTypeEntry<A>, _ id: ActorID, _ request: A.Request, callID: CallID, idempotencyKey: String?,
        deadline: Deadline, admitting limit: Int, on executor: (any TaskExecutor)? = nil, call: InboundCall? = nil,
        completion: @escaping @Sendable (Result<A.Response, CallError>) -> Void
    ) throws -> Mailbox.Admission {
        let activation = try directory.activation(for: id, typed: entry)
        return activation.mailbox.enqueue(
            { [self] in
                if let call, !call.begin(in: activation.mailbox) {
                    // Its caller gave up (a `cancel` frame) while it waited: it never runs.
                    return completion(.failure(CallError(.cancelled, "\(id): the call was cancelled before it ran")))
                }
                var write: PendingWrite?
                let result: Result<A.Response, CallError>
                do {
                    result = .success(
                        try await activation.run(
                            request, callID: callID, idempotencyKey: idempotencyKey, deadline: deadline,
                            write: &write))
                } catch ActivationFailure.deactivated {
                    call?.end()
                    // Deactivated while queued (idle, evicted, or moved by a ring change): run it here again
                    // only if this node still owns the actor; admitted once already, it is not refused now.
                    do {
                        try requireStillHere(id, placement: A.placement)
                        try enqueueHere(
                            entry, id, request, callID: callID, idempotencyKey: idempotencyKey, deadline: deadline,
                            admitting: .max, on: executor, call: call, completion: completion)
                    } catch {
                        completion(.failure(CallError.wrapping(error)))
                    }
                    return
                } catch {
                    result = .failure(error as? CallError ?? CallError.from(handlerError: error, actor: id))
                }
                // Before the turn moves on: a `cancel` that comes later must not reach the next job.
                call?.end()
                OutputGate.whenDurable(write, actor: id) { failure in
                    completion(failure.map { .failure($0) } ?? result)
                }
            }, admitting: limit, on: executor)
    }

    /// Fails unless this node still owns `id` (a message that waited while its activation went away).
    func requireStillHere(_ id: ActorID, placement: PlacementStrategy) throws(CallError) {
        guard case .local = try? route(id, placement: placement) else {
            throw CallError(.nodeUnavailable, "\(id) moved while the call waited; the ring changed")
        }
    }
}
