internal import PlexCore
internal import PlexWire

extension Gossip {
    /// The gossip a `gossip` frame carries.
    init(_ message: Plexspaces_V1_Gossip) {
        fromNode = message.fromNode
        fromIncarnation = message.fromIncarnation
        clusterID = message.clusterID.isEmpty ? nil : message.clusterID
        members = message.members.map { member in
            Member(
                nodeID: member.nodeID, address: member.address, incarnation: member.incarnation,
                status: member.status.rawValue, activations: member.activations)
        }
        registry = message.registry.map { named in
            NamedActor(
                name: named.name, actor: ActorID(typeName: named.typeName, key: named.key), nodeID: named.nodeID)
        }
    }

    /// The gossip as a `gossip` frame carries it.
    var message: Plexspaces_V1_Gossip {
        var message = Plexspaces_V1_Gossip()
        message.fromNode = fromNode
        message.fromIncarnation = fromIncarnation
        message.clusterID = clusterID ?? ""
        message.members = members.map { member in
            var wire = Plexspaces_V1_Member()
            wire.nodeID = member.nodeID
            wire.address = member.address
            wire.incarnation = member.incarnation
            wire.status = Plexspaces_V1_MemberStatus(rawValue: member.status) ?? .up
            wire.activations = member.activations
            return wire
        }
        message.registry = registry.map { entry in
            var named = Plexspaces_V1_NamedActor()
            named.name = entry.name
            named.typeName = entry.actor.typeName
            named.key = entry.actor.key
            named.nodeID = entry.nodeID
            return named
        }
        return message
    }

    /// A `gossip` frame carrying this gossip.
    var frame: Wire.Frame { Wire.Frame(kind: .gossip, body: Wire.body(message)) }

    /// The gossip in a `gossip` frame.
    /// - Throws: ``FrameError`` `malformedBody`.
    init(frame: Wire.Frame) throws {
        self.init(try Wire.decode(Plexspaces_V1_Gossip.self, from: frame.body))
    }
}
