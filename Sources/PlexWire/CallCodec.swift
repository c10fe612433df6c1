public import NIOCore
public import PlexCore

extension Wire {
    /// Encodes the body of a `call` or `tell` frame: the header, then `request` as `codec` writes it.
    ///
    /// - Parameters:
    ///   - deadline: When the caller stops waiting; the body carries what is left of it at `now`.
    /// - Throws: What `codec` throws for a request it cannot encode.
    @inlinable
    public static func callBody<Request: Encodable>(
        to actor: ActorID, _ request: Request, codec: any MessageCodec, idempotencyKey: String?,
        deadline: Deadline, now: UInt64, callID: CallID, trace: [String: String] = [:]
    ) throws -> ByteBuffer {
        var payload: [UInt8] = []
        try codec.encode(request, into: &payload)
        return callBody(
            to: actor, payload: payload, idempotencyKey: idempotencyKey, deadline: deadline, now: now, callID: callID,
            trace: trace)
    }

    /// Encodes the body of a `call` or `tell` frame around a request encoded already (JSON from a client).
    @inlinable
    public static func callBody(
        to actor: ActorID, payload: [UInt8], idempotencyKey: String?, deadline: Deadline, now: UInt64, callID: CallID,
        trace: [String: String] = [:]
    ) -> ByteBuffer {
        var body = ByteBuffer()
        body.reserveCapacity(actor.typeName.utf8.count + actor.key.utf8.count + payload.count + 48)
        CallBody.writeHeader(
            actor: actor, messageType: "", idempotencyKey: idempotencyKey,
            timeoutNanoseconds: deadline.wireTimeout(now: now), callID: callID, trace: trace, to: &body)
        body.writeBytes(payload)
        return body
    }

    /// Reads the answer to a call: the reply decoded as `Response` (with JSON when the frame says so, else
    /// with `codec`), or the error an error reply carries.
    /// - Throws: ``CallError``: the one the owner sent, or `codecFailure` for a reply that does not decode or
    ///   a frame that is no answer.
    @inlinable
    public static func response<Response: Decodable>(
        _ type: Response.Type, from frame: Frame, codec: any MessageCodec
    ) throws -> Response {
        switch frame.kind {
        case .reply:
            let codec: any MessageCodec = frame.flags.contains(.jsonPayload) ? JSONMessageCodec() : codec
            return try frame.body.withUnsafeReadableBytes { try codec.decode(Response.self, from: $0) }
        case .errorReply:
            throw callError(from: frame)
        default:
            throw CallError(.codecFailure, "unexpected \(frame.kind) frame in reply to a call")
        }
    }

    /// The reply's bytes as they came (JSON for a JSON call), or the error an error reply carries.
    /// - Throws: ``CallError``, as ``response(_:from:codec:)``.
    public static func responseBytes(from frame: Frame) throws -> [UInt8] {
        switch frame.kind {
        case .reply: return Array(frame.body.readableBytesView)
        case .errorReply: throw callError(from: frame)
        default: throw CallError(.codecFailure, "unexpected \(frame.kind) frame in reply to a call")
        }
    }

    /// The ``CallError`` an `errorReply` frame carries (`remoteFailure` if its body does not decode).
    public static func callError(from frame: Frame) -> CallError {
        guard let body = try? decode(Plexspaces_V1_ErrorBody.self, from: frame.body) else {
            return CallError(.remoteFailure, "malformed error reply")
        }
        return CallError(
            CallError.Code(rawValue: UInt16(clamping: body.code)), body.message,
            remoteCode: body.remoteCode.isEmpty ? nil : body.remoteCode)
    }

    /// The `errorReply` frame that carries `error` (its code, message and remote code only).
    public static func errorFrame(_ error: CallError, correlationID: UInt64) -> Frame {
        var body = Plexspaces_V1_ErrorBody()
        body.code = UInt32(error.code.rawValue)
        body.message = error.message
        body.remoteCode = error.remoteCode ?? ""
        return Frame(kind: .errorReply, correlationID: correlationID, body: Wire.body(body))
    }
}

extension Wire.CallBody {
    /// The caller's deadline on this node's clock (`now`): what the body carries is what was left when sent.
    public func deadline(now: UInt64) -> Deadline {
        Deadline(wireTimeout: timeoutNanoseconds, now: now)
    }
}
