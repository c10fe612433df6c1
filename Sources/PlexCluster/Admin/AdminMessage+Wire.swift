internal import NIOCore
internal import PlexCore
internal import PlexWire

extension AdminRequest {
    /// The body of the `adminRequest` frame that carries this request.
    var body: ByteBuffer {
        var message = Plexspaces_V1_AdminRequest()
        switch self {
        case .status: message.status = Plexspaces_V1_StatusQuery()
        case .leave: message.leave = Plexspaces_V1_LeaveCommand()
        case .remove(let node, let force):
            message.remove.nodeID = node.rawValue
            message.remove.force = force
        }
        return Wire.body(message)
    }

    /// The request an `adminRequest` frame carries (an empty one asks for the status).
    /// - Throws: ``FrameError`` `malformedBody`.
    init(frame: Wire.Frame) throws {
        switch try Wire.decode(Plexspaces_V1_AdminRequest.self, from: frame.body).query {
        case .status, nil: self = .status
        case .leave: self = .leave
        case .remove(let remove): self = .remove(NodeID(unchecked: remove.nodeID), force: remove.force)
        }
    }
}

extension AdminReply {
    /// The body of the `adminReply` frame that carries this answer.
    var body: ByteBuffer {
        var reply = Plexspaces_V1_AdminReply()
        reply.nodeID = nodeID
        reply.clusterName = clusterName
        reply.clusterID = clusterID
        reply.membership = membership
        let gossip = Gossip(members: members.map(\.member), registry: registry).message
        reply.members = zip(gossip.members, members).map { member, view in
            var wire = Plexspaces_V1_MemberView()
            wire.member = member
            wire.reachability = view.reachability
            return wire
        }
        reply.registry = gossip.registry
        reply.outcome = outcome
        reply.moved = UInt32(clamping: moved)
        reply.notMoved = UInt32(clamping: notMoved)
        reply.warnings = warnings
        return Wire.body(reply)
    }

    /// The answer an `adminReply` frame carries.
    /// - Throws: ``FrameError`` `malformedBody`.
    init(frame: Wire.Frame) throws {
        let reply = try Wire.decode(Plexspaces_V1_AdminReply.self, from: frame.body)
        var gossip = Plexspaces_V1_Gossip()
        gossip.members = reply.members.map(\.member)
        gossip.registry = reply.registry
        let known = Gossip(gossip)
        self.init(
            nodeID: reply.nodeID, clusterName: reply.clusterName, clusterID: reply.clusterID,
            membership: reply.membership,
            members: zip(known.members, reply.members).map { MemberView(member: $0, reachability: $1.reachability) },
            registry: known.registry, outcome: reply.outcome, moved: Int(reply.moved), notMoved: Int(reply.notMoved),
            warnings: reply.warnings)
    }
}
