internal import NIOCore
public import PlexCore
internal import PlexJournal
internal import PlexTransport
internal import PlexWire

/// Where a call goes.
enum Route {
    case local
    case remote(PeerLink)
}

extension PlexNode: ActorCallRouter {
    /// Where calls for `id` go: the named registration if any, else placement; fails fast when the owner
    /// is unreachable or not connected.
    func route(_ id: ActorID, placement: PlacementStrategy) throws -> Route {
        guard joined.load(ordering: .relaxed) else {
            // Without its cluster's ring a node cannot know who owns anything; guessing could fork an actor.
            throw CallError(
                .nodeUnavailable, "\(nodeID) has not joined its cluster yet (waiting for a seed); retry later")
        }
        let table = routing.withLock { $0 }
        guard let (owner, entry) = table.owner(of: id, placement: placement) else {
            throw CallError(.nodeUnavailable, "no member owns \(id)")
        }
        if owner == nodeID { return .local }
        guard let entry, entry.reachable else {
            throw CallError(.nodeUnavailable, "\(owner), the owner of \(id), is unreachable")
        }
        guard let link = entry.link, link.isConnected else {
            throw CallError(.nodeUnavailable, "\(owner), the owner of \(id), is not connected")
        }
        return .remote(link)
    }

    func deadline(_ timeout: Duration?) -> (deadline: UInt64, nanoseconds: UInt64) {
        let timeout = timeout ?? configuration.calls.defaultTimeout
        let nanoseconds = timeout.clampedNanoseconds
        return (Self.now() &+ nanoseconds, nanoseconds)
    }

    public func ask<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request, options: CallOptions)
        async throws -> A.Response
    {
        guard running.load(ordering: .relaxed) else { throw CallError(.shuttingDown, "\(nodeID) is stopped") }
        let (deadline, nanoseconds) = deadline(options.timeout)
        switch try route(id, placement: A.placement) {
        case .local:
            return try await askLocal(type, id, request, idempotencyKey: options.idempotencyKey, deadline: deadline)
        case .remote(let link):
            let body = try encodeCall(type, id, request, timeout: nanoseconds, idempotencyKey: options.idempotencyKey)
            try requireFits(body, code: .invalidRequest, "the request to \(id)")
            let reply = try await link.call(kind: .call, flags: [], body: body, deadline: deadline)
            return try decodeReply(A.Response.self, reply, codec: configuration.calls.codec)
        }
    }

    public func tell<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request) async throws {
        guard running.load(ordering: .relaxed) else { throw CallError(.shuttingDown, "\(nodeID) is stopped") }
        switch try route(id, placement: A.placement) {
        case .local:
            let entry = try localEntry(type, id)
            let activation = self.activation(for: id, entry: entry)
            let callID = nextCallID()
            let (deadline, _) = deadline(nil)
            let admission = activation.mailbox.enqueue(
                { [self] in
                    do {
                        var write: PendingWrite?
                        _ = try await (activation as! Activation<A>).handleLocked(
                            request, callID: callID, now: Self.now(), write: &write)
                    } catch ActivationFailure.deactivated {
                        // Deactivated while queued: hand the message (admitted already) to the next activation.
                        Task {
                            _ = try? await self.askLocal(
                                type, id, request, idempotencyKey: nil, deadline: deadline, admitting: .max)
                        }
                    } catch {
                        self.logger.debug("tell failed", metadata: ["actor.id": "\(id)", "error": "\(error)"])
                    }
                }, admitting: mailboxLimit)
            if case .full(let first) = admission { throw mailboxFull(id, first: first) }
        case .remote(let link):
            let body = try encodeCall(type, id, request, timeout: 0, idempotencyKey: nil)
            try requireFits(body, code: .invalidRequest, "the request to \(id)")
            let (deadline, nanoseconds) = deadline(nil)
            try await link.tell(flags: [], body: body, deadline: deadline, holdUntil: deadline &+ nanoseconds)
        }
    }

    private func localEntry<A: VirtualActor>(_ type: A.Type, _ id: ActorID) throws -> any AnyActorType {
        guard let entry = types.withLock({ $0[A.typeName] }), entry is ActorTypeEntry<A> else {
            throw CallError(.unknownActorType, "\(A.typeName) is not registered on \(nodeID)")
        }
        return entry
    }

    /// Runs a call on this node's activation of `id`.
    ///
    /// - Parameter limit: How many messages may wait before this one is refused with `overloaded`: the
    ///   node's mailbox limit by default; `.max` for a message admitted once already.
    func askLocal<A: VirtualActor>(
        _ type: A.Type, _ id: ActorID, _ request: A.Request, idempotencyKey: String?, deadline: UInt64,
        admitting limit: Int? = nil
    ) async throws -> A.Response {
        let entry = try localEntry(type, id)
        let callID = nextCallID()
        var limit = limit ?? mailboxLimit
        while true {
            let activation = self.activation(for: id, entry: entry) as! Activation<A>
            if case .full(let first) = await activation.mailbox.acquire(admitting: limit) {
                throw mailboxFull(id, first: first)
            }
            limit = .max  // admitted: a retry after a deactivation is not refused
            var write: PendingWrite?
            let response: A.Response
            do {
                defer { activation.mailbox.release() }
                let now = Self.now()
                guard now < deadline else {
                    throw CallError(.timeout, "\(id) did not start the call before its deadline")
                }
                response = try await activation.handleLocked(
                    request, callID: callID, idempotencyKey: idempotencyKey, now: now, write: &write)
            } catch ActivationFailure.deactivated {
                // Deactivated while this waited: go on here only if this node still owns the actor.
                guard case .local = try route(id, placement: A.placement) else {
                    throw CallError(.nodeUnavailable, "\(id) moved while the call waited; the ring changed")
                }
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

    private func encodeCall<A: VirtualActor>(
        _ type: A.Type, _ id: ActorID, _ request: A.Request, timeout: UInt64, idempotencyKey: String?
    ) throws -> ByteBuffer {
        var payload: [UInt8] = []
        try configuration.calls.codec.encode(request, into: &payload)
        var body = ByteBuffer()
        body.reserveCapacity(id.typeName.utf8.count + id.key.utf8.count + payload.count + 48)
        Wire.CallBody.writeHeader(
            actor: id, messageType: "", idempotencyKey: idempotencyKey, timeoutNanoseconds: timeout,
            callID: nextCallID(),
            to: &body)
        body.writeBytes(payload)
        return body
    }

    func decodeReply<R: Decodable>(_ type: R.Type, _ reply: Wire.Frame, codec: any MessageCodec) throws -> R {
        switch reply.kind {
        case .reply:
            let codec: any MessageCodec = reply.flags.contains(.jsonPayload) ? JSONMessageCodec() : codec
            return try reply.body.withUnsafeReadableBytes { try codec.decode(R.self, from: $0) }
        case .errorReply:
            throw Self.callError(from: reply)
        default:
            throw CallError(.codecFailure, "unexpected \(reply.kind) frame in reply to a call")
        }
    }

    static func callError(from frame: Wire.Frame) -> CallError {
        guard let body = try? Wire.decode(Plexspaces_V1_ErrorBody.self, from: frame.body) else {
            return CallError(.remoteFailure, "malformed error reply")
        }
        return CallError(
            CallError.Code(rawValue: UInt16(clamping: body.code)), body.message,
            remoteCode: body.remoteCode.isEmpty ? nil : body.remoteCode)
    }

    static func errorFrame(_ error: CallError, correlationID: UInt64) -> Wire.Frame {
        var body = Plexspaces_V1_ErrorBody()
        body.code = UInt32(error.code.rawValue)
        body.message = error.message
        body.remoteCode = error.remoteCode ?? ""
        return Wire.Frame(kind: .errorReply, correlationID: correlationID, body: Wire.body(body))
    }

    // MARK: Inbound calls

    /// A `call` or `tell` frame arrived from a peer or client.
    func handleInboundCall(_ frame: Wire.Frame, on connection: any Connection) {
        let body: Wire.CallBody
        do {
            body = try Wire.CallBody(reading: frame.body)
        } catch {
            logger.error(
                "closing connection after a malformed call body",
                metadata: ["peer": "\(connection.peer)", "error": "\(error)"])
            connection.close()
            return
        }
        let expectsReply = frame.kind == .call
        let correlation = frame.correlationID
        // A tell with a correlation id is acknowledged once admitted (or refused), which frees its sender's
        // window slot; tells from older senders carry 0 and get no answer.
        let acknowledges = frame.kind == .tell && correlation != 0
        func fail(_ error: CallError) {
            if expectsReply || acknowledges { connection.send(Self.errorFrame(error, correlationID: correlation)) }
        }
        let entry = types.withLock { $0[body.actor.typeName] }
        let route: Route
        do {
            route = try self.route(body.actor, placement: entry?.placement ?? .pinned)
        } catch let error as CallError {
            return fail(error)
        } catch {
            return fail(CallError(.nodeUnavailable, "\(error)"))
        }
        switch route {
        case .remote(let link):
            guard !frame.flags.contains(.forwarded) else {
                return fail(
                    CallError(
                        .nodeUnavailable,
                        "\(body.actor) was forwarded to \(nodeID), which does not own it; the ring is changing"))
            }
            forward(frame, body: body, to: link, expectsReply: expectsReply || acknowledges, reply: connection)
        case .local:
            guard let entry else {
                return fail(
                    CallError(.unknownActorType, "actor type '\(body.actor.typeName)' is not registered on \(nodeID)"))
            }
            let deadline = body.timeoutNanoseconds == 0 ? UInt64.max : Self.now() &+ body.timeoutNanoseconds
            let flags = frame.flags.intersection(.jsonPayload)
            let admission = runInbound(
                body, entry: entry, json: frame.flags.contains(.jsonPayload), deadline: deadline,
                executor: connection.taskExecutor, admitting: mailboxLimit
            ) { [self] result in
                guard expectsReply else { return }
                connection.send(replyFrame(result, to: body.actor, flags: flags, correlationID: correlation))
            }
            switch admission {
            case .admitted:
                if acknowledges { connection.send(Wire.Frame(kind: .reply, correlationID: correlation, body: .init())) }
            case .full(let first):
                fail(mailboxFull(body.actor, first: first))
            }
        }
    }

    /// Queues an inbound call or tell for its actor, unless `limit` messages wait already (then `completion`
    /// is never called).
    @discardableResult
    private func runInbound(
        _ body: Wire.CallBody, entry: any AnyActorType, json: Bool, deadline: UInt64, executor: (any TaskExecutor)?,
        admitting limit: Int, completion: @escaping @Sendable (Result<ByteBuffer, CallError>) -> Void
    ) -> Mailbox.Admission {
        let activation = self.activation(for: body.actor, entry: entry)
        let codec = configuration.calls.codec
        let job: Mailbox.Job = { [self] in
            let now = Self.now()
            guard now < deadline else {
                return completion(
                    .failure(CallError(.timeout, "\(body.actor) did not start the call before its deadline")))
            }
            var write: PendingWrite?
            do {
                let payload = try await entry.handleEncoded(
                    activation, payload: body.payload, json: json, callID: body.callID,
                    idempotencyKey: body.idempotencyKey, codec: codec, now: now, write: &write)
                // Sent once durable (for durable types, from the journal's thread), while the actor goes on.
                guard write != nil else { return completion(.success(payload)) }
                OutputGate.whenDurable(write, actor: body.actor) { failure in
                    completion(failure.map { .failure($0) } ?? .success(payload))
                }
            } catch ActivationFailure.deactivated {
                // Deactivated while queued (idle, evicted, or moved by a ring change): run it here again only
                // if this node still owns the actor.
                guard case .local = try? self.route(body.actor, placement: entry.placement) else {
                    return completion(
                        .failure(
                            CallError(.nodeUnavailable, "\(body.actor) moved while the call waited; the ring changed")))
                }
                // Admitted once already: not refused now.
                self.runInbound(
                    body, entry: entry, json: json, deadline: deadline, executor: executor, admitting: .max,
                    completion: completion)
            } catch let error as CallError {
                OutputGate.whenDurable(write, actor: body.actor) { failure in completion(.failure(failure ?? error)) }
            } catch {
                completion(.failure(CallError(.codecFailure, "\(error)")))
            }
        }
        return activation.mailbox.enqueue(job, admitting: limit, on: executor)
    }

    /// Sends a call or tell on to the owner once and relays the answer (a tell's acknowledgement, too).
    ///
    /// A forwarded tell counts against the window to the owner like any other; while it waits, so does the
    /// sender's slot for it, so a flood through this node is held back at its source.
    private func forward(
        _ frame: Wire.Frame, body: Wire.CallBody, to link: PeerLink, expectsReply: Bool, reply: any Connection
    ) {
        var forwarded = frame
        forwarded.flags.insert(.forwarded)
        let (deadline, nanoseconds) = deadline(
            body.timeoutNanoseconds == 0 ? nil : .nanoseconds(Int64(clamping: body.timeoutNanoseconds)))
        guard expectsReply else {
            // A tell from a sender that wants no acknowledgement.
            Task {
                try? await link.tell(
                    flags: forwarded.flags, body: frame.body, deadline: deadline, holdUntil: deadline &+ nanoseconds)
            }
            return
        }
        let correlation = frame.correlationID
        Task {
            do {
                var answer = try await link.call(
                    kind: frame.kind, flags: forwarded.flags, body: frame.body, deadline: deadline)
                answer.correlationID = correlation
                reply.send(answer)
            } catch let error as CallError {
                reply.send(Self.errorFrame(error, correlationID: correlation))
            } catch {
                reply.send(Self.errorFrame(CallError(.nodeUnavailable, "\(error)"), correlationID: correlation))
            }
        }
    }
}
