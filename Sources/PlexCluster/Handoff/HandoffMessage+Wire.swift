internal import NIOCore
internal import PlexCore
internal import PlexJournal
internal import PlexWire

extension HandoffRequest {
    /// The body of the `handoff` frame that carries this request.
    var body: ByteBuffer {
        var message = Plexspaces_V1_HandoffRequest()
        switch self {
        case .transfer(let transfer): message.transfer = transfer.message
        case .pull(let id): message.pull.actor = id.description
        case .done(let ring): message.done.ring = ring
        }
        return Wire.body(message)
    }

    /// The request a `handoff` frame carries.
    /// - Throws: ``FrameError`` `malformedBody` when the body does not decode; ``CallError`` `invalidRequest`
    ///   when it decodes to no valid request.
    init(frame: Wire.Frame) throws {
        let message = try Wire.decode(Plexspaces_V1_HandoffRequest.self, from: frame.body)
        switch message.action {
        case .transfer(let transfer): self = .transfer(try ActorTransfer(transfer))
        case .pull(let pull):
            do {
                self = .pull(try ActorID(parsing: pull.actor))
            } catch {
                throw CallError(.invalidRequest, "handoff pull of an invalid actor id '\(pull.actor)'")
            }
        case .done(let done): self = .done(ring: done.ring)
        case nil: throw CallError(.invalidRequest, "empty handoff request")
        }
    }
}

extension HandoffReply {
    /// The body of the `reply` frame that carries this answer.
    var body: ByteBuffer {
        var message = Plexspaces_V1_HandoffReply()
        switch self {
        case .stored(let stored): message.stored = stored
        case .transfer(let transfer): message.transfer = transfer.message
        case .movedTo(let node): message.movedTo = node.rawValue
        case .notHeld: message.notHeld = true
        case .acknowledged: message.acknowledged = true
        }
        return Wire.body(message)
    }

    /// The answer a `reply` frame carries.
    /// - Throws: ``FrameError`` `malformedBody`; ``CallError`` `invalidRequest` for an invalid transfer.
    init(frame: Wire.Frame) throws {
        let message = try Wire.decode(Plexspaces_V1_HandoffReply.self, from: frame.body)
        switch message.outcome {
        case .stored(let stored): self = .stored(stored)
        case .transfer(let transfer): self = .transfer(try ActorTransfer(transfer))
        case .movedTo(let node): self = .movedTo(NodeID(unchecked: node))
        case .notHeld: self = .notHeld
        case .acknowledged: self = .acknowledged
        case nil: self = .notHeld  // an answer this build does not know says nothing it can use
        }
    }
}
