internal import NIOCore
internal import PlexCore
internal import PlexJournal
internal import PlexWire
internal import Tracing

/// A registered actor type, without its static type: makes activations, and opens an encoded message (an
/// inbound frame, a reminder) into a typed one for ``CallDispatcher``'s turn.
protocol AnyActorType: Sendable {
    var typeName: String { get }
    /// The type's instruments.
    var metrics: ActorMetrics { get }
    var placement: PlacementStrategy { get }
    /// Whether the type journals its messages (and so moves with handoffs).
    var isDurable: Bool { get }
    func makeActivation(
        id: ActorID, now: UInt64, journal: Journal, retentionMilliseconds: Int64, turns: TurnTasks,
        host: (any ActivationHost)?, tracing: CallTracing?,
        makeContext: @escaping @Sendable (CallID?, String?, Bool) -> ActorContext
    ) -> any AnyActivation
    /// Queues the request in `body` for its actor's turn (an inbound call or tell), where it is decoded, run
    /// (``Activation/run``) and its reply encoded; `completion` gets the encoded reply (or the error, such as
    /// `invalidRequest` for a request that does not decode) once it may leave.
    func enqueueEncoded(
        _ body: Wire.CallBody, json: Bool, deadline: Deadline, trace: ServiceContext?, in dispatcher: CallDispatcher,
        on executor: (any TaskExecutor)?, call: InboundCall?, admitting limit: Int,
        completion: @escaping @Sendable (Result<ByteBuffer, CallError>) -> Void
    ) throws(CallError) -> Mailbox.Admission
    /// Decodes a message stored by the journal's codec (a reminder) and runs it in its actor's turn; returns
    /// once its outcome is durable.
    /// - Throws: ``CallError`` `invalidRequest` when it does not decode; the call's errors otherwise.
    func runStored(
        _ payload: [UInt8], to id: ActorID, idempotencyKey: String, in dispatcher: CallDispatcher
    ) async throws(CallError)
}

struct ActorTypeEntry<A: VirtualActor>: AnyActorType {
    let make: @Sendable () -> A
    let metrics: ActorMetrics
    var typeName: String { A.typeName }
    var placement: PlacementStrategy { A.placement }
    var isDurable: Bool { if case .durable = A.durability { true } else { false } }

    func makeActivation(
        id: ActorID, now: UInt64, journal: Journal, retentionMilliseconds: Int64, turns: TurnTasks,
        host: (any ActivationHost)?, tracing: CallTracing?,
        makeContext: @escaping @Sendable (CallID?, String?, Bool) -> ActorContext
    ) -> any AnyActivation {
        let durable: Journal? = if case .durable = A.durability { journal } else { nil }
        return Activation<A>(
            id: id, behaviour: make(), now: now, journal: durable, retentionMilliseconds: retentionMilliseconds,
            turns: turns, host: host, metrics: metrics, tracing: tracing, makeContext: makeContext)
    }

    func enqueueEncoded(
        _ body: Wire.CallBody, json: Bool, deadline: Deadline, trace: ServiceContext?, in dispatcher: CallDispatcher,
        on executor: (any TaskExecutor)?, call: InboundCall?, admitting limit: Int,
        completion: @escaping @Sendable (Result<ByteBuffer, CallError>) -> Void
    ) throws(CallError) -> Mailbox.Admission {
        let activation = try dispatcher.directory.activation(for: body.actor, typed: self)
        // The job captures the encoded request and hands on the encoded reply: no generic value crosses a
        // closure on this path (each would cost a metadata lookup and a dynamic layout per message).
        return activation.mailbox.enqueue(
            { [self] in
                if let call, !call.begin(in: activation.mailbox) {
                    // Its caller gave up (a `cancel` frame) while it waited: it never runs.
                    return completion(
                        .failure(CallError(.cancelled, "\(body.actor): the call was cancelled before it ran")))
                }
                let codec: any MessageCodec = json ? JSONMessageCodec() : dispatcher.codec
                var write: PendingWrite?
                let reply: Result<ByteBuffer, CallError>
                do {
                    let request = try decode(body.payload, codec: codec)
                    let response = try await activation.run(
                        request, callID: body.callID, idempotencyKey: body.idempotencyKey, deadline: deadline,
                        trace: trace, write: &write)
                    var bytes: [UInt8] = []
                    try codec.encode(response, into: &bytes)
                    reply = .success(ByteBuffer(bytes: bytes))
                } catch ActivationFailure.deactivated {
                    call?.end()
                    // Deactivated while queued (idle, evicted, or moved by a ring change): run it here again
                    // only if this node still owns the actor; admitted once already, it is not refused now.
                    do throws(CallError) {
                        try dispatcher.requireStillHere(body.actor, placement: A.placement)
                        _ = try enqueueEncoded(
                            body, json: json, deadline: deadline, trace: trace, in: dispatcher, on: executor,
                            call: call, admitting: .max, completion: completion)
                    } catch {
                        completion(.failure(error))
                    }
                    return
                } catch let error as CallError {
                    reply = .failure(error)
                } catch {
                    reply = .failure(CallError(.codecFailure, "the reply of \(body.actor) does not encode: \(error)"))
                }
                // Before the turn moves on: a `cancel` that comes later must not reach the next job.
                call?.end()
                // Sent once durable (for durable types, from the journal's thread), while the actor goes on.
                guard write != nil else { return completion(reply) }
                OutputGate.whenDurable(write, actor: body.actor) { failure in
                    completion(failure.map { .failure($0) } ?? reply)
                }
            }, admitting: limit, on: executor)
    }

    func runStored(
        _ payload: [UInt8], to id: ActorID, idempotencyKey: String, in dispatcher: CallDispatcher
    ) async throws(CallError) {
        let request = try decode(ByteBuffer(bytes: payload), codec: journalCodec)
        do {
            _ = try await dispatcher.runHere(
                A.self, id, request, callID: dispatcher.nextCallID(), idempotencyKey: idempotencyKey, deadline: .never,
                admitting: .max)
        } catch {
            throw CallError.wrapping(error)
        }
    }

    private func decode(_ payload: ByteBuffer, codec: any MessageCodec) throws(CallError) -> A.Request {
        do {
            return try payload.withUnsafeReadableBytes { try codec.decode(A.Request.self, from: $0) }
        } catch let error as CallError {
            throw CallError(.invalidRequest, "request for \(A.typeName) does not decode: \(error.message)")
        } catch {
            throw CallError(.invalidRequest, "request for \(A.typeName) does not decode: \(error)")
        }
    }
}

extension CallError {
    /// The call error for an error a handler threw.
    static func from(handlerError error: any Error, actor: ActorID) -> CallError {
        if let error = error as? CallError {
            return CallError(.remoteFailure, "\(actor) failed: \(error)", remoteCode: error.remoteCode)
        }
        if let failure = error as? ActorFailure {
            return CallError(.remoteFailure, failure.message, remoteCode: failure.code)
        }
        return CallError(.remoteFailure, "\(actor) failed: \(error)")
    }
}
