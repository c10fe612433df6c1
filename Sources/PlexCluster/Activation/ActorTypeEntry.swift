internal import NIOCore
internal import PlexCore
internal import PlexJournal
internal import PlexWire

/// A registered actor type, without its static type: makes activations and runs encoded messages.
protocol AnyActorType: Sendable {
    var typeName: String { get }
    var placement: PlacementStrategy { get }
    /// Whether the type journals its messages (and so moves with handoffs).
    var isDurable: Bool { get }
    func makeActivation(
        id: ActorID, now: UInt64, journal: Journal, retentionMilliseconds: Int64,
        host: any ActivationHost,
        makeContext: @escaping @Sendable (CallID?, String?, Bool) -> ActorContext
    ) -> any AnyActivation
    /// Decodes `payload`, handles it (the caller holds the activation's turn), and encodes the reply. For a
    /// durable type `write` is set to the message's journal write: the reply (or the error thrown) may leave
    /// once it is durable (``OutputGate``).
    func handleEncoded(
        _ activation: any AnyActivation, payload: ByteBuffer, json: Bool, callID: CallID, idempotencyKey: String?,
        codec: any MessageCodec, now: UInt64, write: inout PendingWrite?
    ) async throws -> ByteBuffer
}

struct ActorTypeEntry<A: VirtualActor>: AnyActorType {
    let make: @Sendable () -> A
    var typeName: String { A.typeName }
    var placement: PlacementStrategy { A.placement }
    var isDurable: Bool { if case .durable = A.durability { true } else { false } }

    func makeActivation(
        id: ActorID, now: UInt64, journal: Journal, retentionMilliseconds: Int64,
        host: any ActivationHost,
        makeContext: @escaping @Sendable (CallID?, String?, Bool) -> ActorContext
    ) -> any AnyActivation {
        let durable: Journal? = if case .durable = A.durability { journal } else { nil }
        return Activation<A>(
            id: id, behaviour: make(), now: now, journal: durable, retentionMilliseconds: retentionMilliseconds,
            host: host, makeContext: makeContext)
    }

    func handleEncoded(
        _ activation: any AnyActivation, payload: ByteBuffer, json: Bool, callID: CallID, idempotencyKey: String?,
        codec: any MessageCodec, now: UInt64, write: inout PendingWrite?
    ) async throws -> ByteBuffer {
        let codec: any MessageCodec = json ? JSONMessageCodec() : codec
        let request: A.Request
        do {
            request = try payload.withUnsafeReadableBytes { try codec.decode(A.Request.self, from: $0) }
        } catch let error as CallError {
            throw CallError(.invalidRequest, "request for \(A.typeName) does not decode: \(error.message)")
        }
        let response: A.Response
        do {
            response = try await (activation as! Activation<A>).handleLocked(
                request, callID: callID, idempotencyKey: idempotencyKey, now: now, write: &write)
        } catch let error as ActivationFailure {
            throw error
        } catch let error as CallError {
            throw error
        } catch {
            throw CallError.from(handlerError: error, actor: activation.id)
        }
        var bytes: [UInt8] = []
        try codec.encode(response, into: &bytes)
        return ByteBuffer(bytes: bytes)
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
