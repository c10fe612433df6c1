internal import NIOCore
internal import PlexCore
internal import PlexJournal
internal import PlexWire
internal import Synchronization

extension CallDispatcher {
    /// Calls `id` with a request in JSON, wherever it lives, and returns its reply in JSON: the path of callers
    /// that do not link the actor's Swift types (the HTTP gateway). The owner decodes the request with the
    /// actor's `Request` type, so a type this node does not register is still reached on a node that does.
    ///
    /// - Throws: ``CallError``: `unknownActorType` when the owner does not register `id`'s type,
    ///   `invalidRequest` when the JSON does not decode as its request, and the errors of any call.
    /// - Parameter executor: Where a local turn runs (`nil`: the global pool).
    func askJSON(_ id: ActorID, json: [UInt8], options: CallOptions, on executor: (any TaskExecutor)?)
        async throws(CallError) -> [UInt8]
    {
        guard runtime.isRunning else { throw CallError(.shuttingDown, "\(nodeID) is stopped") }
        try Self.requireWireStrings(id, options.idempotencyKey)
        let entry = directory.entry(named: id.typeName)
        let route = try route(id, placement: entry?.placement ?? .pinned)
        guard case .remote(let link) = route else {
            return try await askJSON(
                id, json: json, options: options, entry: entry, route: route, trace: [:], on: executor)
        }
        do {
            return try await hop(to: id, via: link) { trace throws(CallError) in
                try await askJSON(
                    id, json: json, options: options, entry: entry, route: route, trace: trace, on: executor)
            }
        } catch {
            throw CallError.wrapping(error)
        }
    }

    private func askJSON(
        _ id: ActorID, json: [UInt8], options: CallOptions, entry: (any AnyActorType)?, route: Route,
        trace: [String: String], on executor: (any TaskExecutor)?
    ) async throws(CallError) -> [UInt8] {
        let now = NodeRuntime.now()
        let deadline = runtime.deadline(after: options.timeout, now: now)
        switch route {
        case .local:
            // The call as it would reach the owner from another node, without encoding it to read it back.
            let call = Wire.CallBody(
                actor: id, messageType: "", idempotencyKey: options.idempotencyKey,
                timeoutNanoseconds: deadline.wireTimeout(now: now), callID: nextCallID(),
                payload: ByteBuffer(bytes: json))
            try runtime.requireFits(call, code: .invalidRequest, "the request to \(id)")
            guard let entry else {
                throw CallError(.unknownActorType, "actor type '\(id.typeName)' is not registered on \(nodeID)")
            }
            // The caller hears at its deadline (within the sweep's resolution, 5 ms) even if the turn has not ended
            // (it waits behind a slow message, or its handler hangs); the call may still take effect later, as any
            // timed-out call may.
            let answer = CallAnswer(id)
            do throws(CallError) {
                let admission = try entry.enqueueEncoded(
                    call, json: true, deadline: deadline, trace: runtime.tracing == nil ? nil : .current, in: self,
                    on: executor, call: nil, admitting: mailboxLimit
                ) { answer.give($0) }
                if case .full(let first) = admission { answer.give(.failure(mailboxFull(id, first: first))) }
            } catch {
                answer.give(.failure(error))
            }
            if !answer.isAnswered { deadlines.add(answer, deadline: deadline) }
            return Array(try await answer.value.get().readableBytesView)
        case .remote(let link):
            let body = Wire.callBody(
                to: id, payload: json, idempotencyKey: options.idempotencyKey, deadline: deadline, now: now,
                callID: nextCallID(), trace: trace)
            try runtime.requireFits(body, code: .invalidRequest, "the request to \(id)")
            do {
                let reply = try await link.call(
                    kind: .call, flags: Wire.FrameFlags.jsonPayload.union(Wire.FrameFlags(carrying: trace)),
                    body: body, deadline: deadline)
                return try Wire.responseBytes(from: reply)
            } catch {
                throw CallError.wrapping(error, as: .nodeUnavailable)
            }
        }
    }
}

/// A local JSON call's answer: the turn's reply, or its timeout from the ``DeadlineSweep``, whichever comes
/// first, handed to one waiter; later ones are dropped.
final class CallAnswer: DeadlineWaiter {
    private let id: ActorID
    private let state = Mutex<
        (value: Result<ByteBuffer, CallError>?, waiter: CheckedContinuation<Result<ByteBuffer, CallError>, Never>?)
    >((nil, nil))

    init(_ id: ActorID) {
        self.id = id
    }

    /// Gives an answer; ignored if one was given before.
    func give(_ value: Result<ByteBuffer, CallError>) {
        let waiter = state.withLock { state -> CheckedContinuation<Result<ByteBuffer, CallError>, Never>? in
            guard state.value == nil else { return nil }
            state.value = value
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: value)
    }

    var isAnswered: Bool { state.withLock { $0.value != nil } }

    func expire() {
        give(.failure(CallError(.timeout, "\(id) did not answer before the call's deadline")))
    }

    /// The first answer, once there is one (one waiter only).
    var value: Result<ByteBuffer, CallError> {
        get async {
            await withCheckedContinuation { continuation in
                let ready = state.withLock { state -> Result<ByteBuffer, CallError>? in
                    if let value = state.value { return value }
                    state.waiter = continuation
                    return nil
                }
                if let ready { continuation.resume(returning: ready) }
            }
        }
    }
}
