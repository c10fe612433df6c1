internal import NIOCore
internal import PlexCore
internal import PlexTransport
internal import PlexWire

/// Every frame a node receives arrives here, and goes by its kind: calls and tells to dispatch, gossip to
/// membership, admin requests to ``AdminCommands``, handoff frames to ``HandoffCoordinator``.
extension CallDispatcher: NodeEvents {
    func connectionEstablished(_ connection: any Connection) {
        membership.connectionEstablished(connection)
    }

    func received(_ frame: Wire.Frame, on connection: any Connection) {
        switch frame.kind {
        case .call, .tell:
            // The hot path. Liveness comes from gossip (every heartbeat interval), not from every frame.
            receivedCall(frame, on: connection)
        case .reply, .errorReply, .adminReply:
            // Normally completed by the connection's delegate; this covers a connection made before its link.
            // Only a member answers this node's calls: a client's reply frame would complete a call to the
            // member whose node id it chose to claim (forged answers, handoff acknowledgements, removal votes).
            let peer = connection.peer
            guard peer.role == .node else {
                logger.warning(
                    "closing a client connection that sent a reply frame",
                    metadata: ["peer": "\(peer)", "frame.kind": "\(frame.kind)"])
                return connection.close()
            }
            membership.existingLink(to: peer.nodeID)?.complete(frame)
        case .gossip:
            let peer = connection.peer
            guard peer.role == .node, let gossip = runtime.decodeOrClose(frame, on: connection, Gossip.init(frame:))
            else { return }
            membership.received(gossip, from: peer, on: connection)
        case .adminRequest:
            admin.received(frame, on: connection)
        case .handoff:
            handoff.received(frame, on: connection)
        case .cancel:
            // The caller gave up on a call: skipped if it waits for its turn, its handler cancelled if it runs.
            inbound.cancel(frame.correlationID, on: connection)
        case .handshake, .handshakeAck:
            break  // the session rejects these after the handshake
        }
    }

    func connectionClosed(_ connection: any Connection, error: (any Error)?) {
        // Nobody waits for the answers of the calls that came over it.
        inbound.cancelAll(on: connection)
        membership.connectionClosed(connection)
    }

    // MARK: Calls and tells

    /// A `call` or `tell` frame arrived from a peer or client: run here, or forwarded once to the owner.
    func receivedCall(_ frame: Wire.Frame, on connection: any Connection) {
        let body: Wire.CallBody
        do {
            body = try Wire.CallBody(reading: frame.body, flags: frame.flags)
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
            if expectsReply || acknowledges { connection.send(Wire.errorFrame(error, correlationID: correlation)) }
        }
        func failCall(_ error: CallError) {
            if expectsReply { inbound.remove(correlation, on: connection) }
            fail(error)
        }
        let entry = directory.entry(named: body.actor.typeName)
        let route: Route
        do {
            route = try self.route(body.actor, placement: entry?.placement ?? .pinned)
        } catch {
            return fail(error)
        }
        let deadline = body.deadline(now: NodeRuntime.now())
        // A call (not a tell) can be cancelled by its caller until it is answered.
        let call = expectsReply ? inbound.register(correlation, on: connection) : nil
        switch route {
        case .remote(let link):
            guard !frame.flags.contains(.forwarded) else {
                return failCall(
                    CallError(
                        .nodeUnavailable,
                        "\(body.actor) was forwarded to \(nodeID), which does not own it; the ring is changing"))
            }
            forward(
                frame, deadline: deadline, to: link, expectsReply: expectsReply || acknowledges, call: call,
                reply: connection)
        case .local:
            guard let entry else {
                return failCall(
                    CallError(.unknownActorType, "actor type '\(body.actor.typeName)' is not registered on \(nodeID)"))
            }
            let flags = frame.flags.intersection(.jsonPayload)
            let actor = body.actor
            let admission: Mailbox.Admission
            do {
                admission = try entry.enqueueEncoded(
                    body, json: frame.flags.contains(.jsonPayload), deadline: deadline,
                    trace: runtime.tracing?.context(from: body.trace), in: self,
                    on: connection.taskExecutor, call: call, admitting: mailboxLimit
                ) { [runtime, inbound] result in
                    guard expectsReply else { return }
                    inbound.remove(correlation, on: connection)
                    // A cancelled call's caller stopped waiting: nothing to answer.
                    if case .failure(let error) = result, error.code == .cancelled { return }
                    connection.send(runtime.replyFrame(result, to: actor, flags: flags, correlationID: correlation))
                }
            } catch {
                return failCall(error)
            }
            switch admission {
            case .admitted:
                if acknowledges { connection.send(Wire.Frame(kind: .reply, correlationID: correlation, body: .init())) }
            case .full(let first):
                failCall(mailboxFull(actor, first: first))
            }
        }
    }

    /// Sends a call or tell on to the owner once and relays the answer (a tell's acknowledgement, too).
    ///
    /// A forwarded tell counts against the window to the owner like any other; while it waits, so does the
    /// sender's slot for it, so a flood through this node is held back at its source.
    private func forward(
        _ frame: Wire.Frame, deadline: Deadline, to link: PeerLink, expectsReply: Bool, call: InboundCall?,
        reply: any Connection
    ) {
        let flags = frame.flags.union(.forwarded)
        let grace = runtime.configuration.calls.defaultTimeout
        // A call without a deadline waits for a window slot as long as this node's calls do.
        let slotDeadline = deadline == .never ? runtime.deadline(after: nil) : deadline
        guard expectsReply else {
            // A tell from a sender that wants no acknowledgement.
            runtime.tasks.start {
                try? await link.tell(
                    flags: flags, body: frame.body, deadline: slotDeadline, holdUntil: slotDeadline.adding(grace))
            }
            return
        }
        let correlation = frame.correlationID
        let task = runtime.tasks.task { [inbound] in
            defer { if call != nil { inbound.remove(correlation, on: reply) } }
            do {
                var answer = try await link.call(
                    kind: frame.kind, flags: flags, body: frame.body, deadline: slotDeadline)
                answer.correlationID = correlation
                reply.send(answer)
            } catch let error as CallError where error.code == .cancelled {
                return  // its caller gave up (the owner was told): nothing to answer
            } catch {
                reply.send(Wire.errorFrame(CallError.wrapping(error, as: .nodeUnavailable), correlationID: correlation))
            }
        }
        if let task {
            call?.forwarded(by: task)
        } else {
            if call != nil { inbound.remove(correlation, on: reply) }
            reply.send(Wire.errorFrame(CallError(.shuttingDown, "\(nodeID) is stopping"), correlationID: correlation))
        }
    }
}

extension NodeRuntime {
    /// The frame that answers a call: the reply, or the error (also when the reply is too large to send).
    func replyFrame(
        _ result: Result<ByteBuffer, CallError>, to actor: ActorID, flags: Wire.FrameFlags, correlationID: UInt64
    ) -> Wire.Frame {
        do {
            let payload = try result.get()
            try requireFits(payload, code: .codecFailure, "the reply of \(actor) (the call ran)")
            return Wire.Frame(kind: .reply, flags: flags, correlationID: correlationID, body: payload)
        } catch {
            return Wire.errorFrame(error, correlationID: correlationID)
        }
    }
}
