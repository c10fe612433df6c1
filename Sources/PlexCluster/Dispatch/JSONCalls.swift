internal import NIOCore
internal import PlexCore
internal import PlexJournal
internal import PlexWire

extension CallDispatcher {
    /// Calls `id` with a request in JSON, wherever it lives, and returns its reply in JSON: the path of callers
    /// that do not link the actor's Swift types (the HTTP gateway). The owner decodes the request with the
    /// actor's `Request` type, so a type this node does not register is still reached on a node that does.
    ///
    /// - Throws: ``CallError``: `unknownActorType` when the owner does not register `id`'s type,
    ///   `invalidRequest` when the JSON does not decode as its request, and the errors of any call.
    func askJSON(_ id: ActorID, json: [UInt8], options: CallOptions) async throws(CallError) -> [UInt8] {
        guard runtime.isRunning else { throw CallError(.shuttingDown, "\(nodeID) is stopped") }
        try Self.requireWireStrings(id, options.idempotencyKey)
        let entry = directory.entry(named: id.typeName)
        let route = try route(id, placement: entry?.placement ?? .pinned)
        guard case .remote(let link) = route, let tracing = runtime.tracing else {
            return try await askJSON(id, json: json, options: options, entry: entry, route: route, trace: [:])
        }
        do {
            return try await tracing.hop(to: id, peer: link.peer) { trace throws(CallError) in
                try await askJSON(id, json: json, options: options, entry: entry, route: route, trace: trace)
            }
        } catch {
            throw CallError.wrapping(error)
        }
    }

    private func askJSON(
        _ id: ActorID, json: [UInt8], options: CallOptions, entry: (any AnyActorType)?, route: Route,
        trace: [String: String]
    ) async throws(CallError) -> [UInt8] {
        let now = NodeRuntime.now()
        let deadline = runtime.deadline(after: options.timeout, now: now)
        let body = Wire.callBody(
            to: id, payload: json, idempotencyKey: options.idempotencyKey, deadline: deadline, now: now,
            callID: nextCallID(), trace: trace)
        try runtime.requireFits(body, code: .invalidRequest, "the request to \(id)")
        switch route {
        case .local:
            guard let entry else {
                throw CallError(.unknownActorType, "actor type '\(id.typeName)' is not registered on \(nodeID)")
            }
            let call: Wire.CallBody
            do {
                call = try Wire.CallBody(reading: body)
            } catch {
                throw CallError.wrapping(error, as: .invalidRequest)
            }
            let result = await withCheckedContinuation {
                (continuation: CheckedContinuation<Result<ByteBuffer, CallError>, Never>) in
                do throws(CallError) {
                    let admission = try entry.enqueueEncoded(
                        call, json: true, deadline: deadline, trace: runtime.tracing == nil ? nil : .current, in: self,
                        on: nil, call: nil, admitting: mailboxLimit
                    ) { continuation.resume(returning: $0) }
                    if case .full(let first) = admission {
                        continuation.resume(returning: .failure(mailboxFull(id, first: first)))
                    }
                } catch {
                    continuation.resume(returning: .failure(error))
                }
            }
            return Array(try result.get().readableBytesView)
        case .remote(let link):
            do {
                let reply = try await link.call(
                    kind: .call, flags: Wire.FrameFlags.jsonPayload.union(trace.isEmpty ? [] : .traceContext),
                    body: body, deadline: deadline)
                return try Wire.responseBytes(from: reply)
            } catch {
                throw CallError.wrapping(error, as: .nodeUnavailable)
            }
        }
    }
}
