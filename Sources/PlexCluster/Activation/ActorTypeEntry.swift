internal import NIOCore
internal import PlexCore
internal import PlexJournal
internal import PlexWire

/// A registered actor type, without its static type: makes activations, and opens an encoded message (an
/// inbound frame, a reminder) into a typed one for ``CallDispatcher``'s turn.
protocol AnyActorType: Sendable {
    var typeName: String { get }
    var placement: PlacementStrategy { get }
    /// Whether the type journals its messages (and so moves with handoffs).
    var isDurable: Bool { get }
    func makeActivation(
        id: ActorID, now: UInt64, journal: Journal, retentionMilliseconds: Int64, turns: TurnTasks,
        host: (any ActivationHost)?, makeContext: @escaping @Sendable (CallID?, String?, Bool) -> ActorContext
    ) -> any AnyActivation
    /// Decodes the request in `body` and queues it for its actor's turn (an inbound call or tell); `completion`
    /// gets the encoded reply (or the error) once it may leave. A request that does not decode is refused
    /// with `invalidRequest` before it takes a turn.
    func enqueueEncoded(
        _ body: Wire.CallBody, json: Bool, deadline: Deadline, in dispatcher: CallDispatcher,
        on executor: (any TaskExecutor)?, call: InboundCall?,
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
    var typeName: String { A.typeName }
    var placement: PlacementStrategy { A.placement }
    var isDurable: Bool { if case .durable = A.durability { true } else { false } }

    func makeActivation(
        id: ActorID, now: UInt64, journal: Journal, retentionMilliseconds: Int64, turns: TurnTasks,
        host: (any ActivationHost)?, makeContext: @escaping @Sendable (CallID?, String?, Bool) -> ActorContext
    ) -> any AnyActivation {
        let durable: Journal? = if case .durable = A.durability { journal } else { nil }
        return Activation<A>(
            id: id, behaviour: make(), now: now, journal: durable, retentionMilliseconds: retentionMilliseconds,
            turns: turns, host: host, makeContext: makeContext)
    }

    func enqueueEncoded(
        _ body: Wire.CallBody, json: Bool, deadline: Deadline, in dispatcher: CallDispatcher,
        on executor: (any TaskExecutor)?, call: InboundCall?,
        completion: @escaping @Sendable (Result<ByteBuffer, CallError>) -> Void
    ) throws(CallError) -> Mailbox.Admission {
        let codec: any MessageCodec = json ? JSONMessageCodec() : dispatcher.codec
        let request = try decode(body.payload, codec: codec)
        let actor = body.actor
        do {
            return try dispatcher.enqueueHere(
                self, actor, request, callID: body.callID, idempotencyKey: body.idempotencyKey, deadline: deadline,
                admitting: dispatcher.mailboxLimit, on: executor, call: call
            ) { result in
                completion(
                    result.flatMap { response in
                        do {
                            var bytes: [UInt8] = []
                            try codec.encode(response, into: &bytes)
                            return .success(ByteBuffer(bytes: bytes))
                        } catch {
                            return .failure(
                                CallError(.codecFailure, "the reply of \(actor) does not encode: \(error)"))
                        }
                    })
            }
        } catch {
            throw CallError.wrapping(error)
        }
    }

    func runStored(
        _ payload: [UInt8], to id: ActorID, idempotencyKey: String, in dispatcher: CallDispatcher
    ) async throws(CallError) {
        let request = try decode(ByteBuffer(bytes: payload), codec: journalCodec)
        do {
            _ = try await dispatcher.runHere(
                self, id, request, callID: dispatcher.nextCallID(), idempotencyKey: idempotencyKey, deadline: .never,
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
