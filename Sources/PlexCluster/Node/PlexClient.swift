public import Logging
internal import NIOCore
public import PlexCore
public import PlexTransport
internal import PlexWire
internal import Synchronization

/// One member as a node reports it to ``PlexClient/status(timeout:)``.
public struct MemberStatusView: Codable, Sendable, Hashable {
    public var nodeID: String
    public var address: String
    public var incarnation: UInt64
    /// `up`, `unreachable`, `leaving` or `left`, as seen by the answering node.
    public var state: String
    public var activations: UInt32
}

/// The cluster as one node sees it.
public struct ClusterStatus: Codable, Sendable, Hashable {
    /// The node that answered.
    public var answeredBy: String
    public var clusterName: String
    /// The id of the answering node's cluster; empty while it waits to join one.
    public var clusterID: String
    /// `joined`, or `joining: …` while the answering node waits for a seed.
    public var membership: String
    public var members: [MemberStatusView]
    /// Named actors: name → `type/key@node`.
    public var named: [String: String]
}

/// A connection to one node for tools that are not members: the CLI, benchmarks, scripts.
///
/// A client proves the cluster secret like a node does, but never joins the ring. Calls go to the node it
/// is connected to, which routes them to the owner.
public final class PlexClient: Sendable {
    let transport: TCPTransport
    let link: PeerLink
    let connection: any Connection
    let codec: any MessageCodec
    let sequence = Atomic<UInt64>(0)
    let origin = UInt64.random(in: 1...UInt64.max)

    init(transport: TCPTransport, link: PeerLink, connection: any Connection, codec: any MessageCodec) {
        self.transport = transport
        self.link = link
        self.connection = connection
        self.codec = codec
    }

    /// Connects to the node at `address`.
    /// - Throws: ``TransportError`` when the node cannot be reached or refuses the handshake.
    public static func connect(
        to address: PeerAddress, clusterName: String, secret: [UInt8], codec: any MessageCodec = BinaryMessageCodec(),
        logger: Logger = Logger(label: "plex.client")
    ) async throws -> PlexClient {
        let transport = TCPTransport(
            configuration: .init(handshake: HandshakeConfiguration(clusterName: clusterName, secret: secret)),
            logger: logger)
        transport.setLocalIdentity(
            PeerIdentity(role: .client, nodeID: NodeID(unchecked: "client"), incarnation: 0, listenAddress: ""))
        let delegate = ClientDelegate()
        let connection = try await transport.connect(to: address, delegate: delegate)
        let link = PeerLink(peer: connection.peer.nodeID, maximumInFlight: 1 << 20)
        _ = link.attachIfDisconnected(connection)
        delegate.link.withLock { $0 = link }
        let client = PlexClient(transport: transport, link: link, connection: connection, codec: codec)
        client.startSweeper()
        return client
    }

    /// The node this client talks to.
    public var node: NodeID { connection.peer.nodeID }

    private func startSweeper() {
        let link = self.link
        Task { [weak self] in
            while self != nil && link.isConnected {
                link.expire(now: NIODeadline.now().uptimeNanoseconds)
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
    }

    private func deadline(_ timeout: Duration) -> (UInt64, UInt64) {
        let ns = timeout.clampedNanoseconds
        return (NIODeadline.now().uptimeNanoseconds + ns, ns)
    }

    private func callBody(_ actor: ActorID, timeout: UInt64, idempotencyKey: String?, payload: [UInt8]) -> ByteBuffer {
        var body = ByteBuffer()
        Wire.CallBody.writeHeader(
            actor: actor, messageType: "", idempotencyKey: idempotencyKey, timeoutNanoseconds: timeout,
            callID: CallID(origin: origin, sequence: sequence.add(1, ordering: .relaxed).newValue), to: &body)
        body.writeBytes(payload)
        return body
    }

    /// Calls `actor` with a JSON request and returns the JSON reply.
    /// - Throws: ``CallError``.
    public func call(
        _ actor: ActorID, json: [UInt8], timeout: Duration = .seconds(5), idempotencyKey: String? = nil
    ) async throws -> [UInt8] {
        let (deadline, ns) = deadline(timeout)
        let reply = try await link.call(
            kind: .call, flags: .jsonPayload,
            body: callBody(actor, timeout: ns, idempotencyKey: idempotencyKey, payload: json), deadline: deadline)
        switch reply.kind {
        case .reply: return Array(reply.body.readableBytesView)
        case .errorReply: throw PlexNode.callError(from: reply)
        default: throw CallError(.codecFailure, "unexpected \(reply.kind) in reply")
        }
    }

    /// Calls an actor with a typed request over the binary codec.
    public func ask<A: VirtualActor>(
        _ type: A.Type, key: String, _ request: A.Request, timeout: Duration = .seconds(5),
        idempotencyKey: String? = nil
    ) async throws -> A.Response {
        let (deadline, ns) = deadline(timeout)
        var payload: [UInt8] = []
        try codec.encode(request, into: &payload)
        let reply = try await link.call(
            kind: .call, flags: [],
            body: callBody(
                ActorID(typeName: A.typeName, key: key), timeout: ns, idempotencyKey: idempotencyKey, payload: payload),
            deadline: deadline)
        switch reply.kind {
        case .reply: return try reply.body.withUnsafeReadableBytes { try codec.decode(A.Response.self, from: $0) }
        case .errorReply: throw PlexNode.callError(from: reply)
        default: throw CallError(.codecFailure, "unexpected \(reply.kind) in reply")
        }
    }

    /// The cluster as the connected node sees it.
    public func status(timeout: Duration = .seconds(5)) async throws -> ClusterStatus {
        var request = Plexspaces_V1_AdminRequest()
        request.status = Plexspaces_V1_StatusQuery()
        let reply = try await link.call(
            kind: .adminRequest, flags: [], body: Wire.body(request), deadline: deadline(timeout).0)
        let status = try Wire.decode(Plexspaces_V1_AdminReply.self, from: reply.body)
        return ClusterStatus(
            answeredBy: status.nodeID, clusterName: status.clusterName, clusterID: status.clusterID,
            membership: status.membership,
            members: status.members.map {
                MemberStatusView(
                    nodeID: $0.member.nodeID, address: $0.member.address, incarnation: $0.member.incarnation,
                    state: $0.reachability, activations: $0.member.activations)
            },
            named: Dictionary(
                status.registry.map { ($0.name, "\($0.typeName)/\($0.key)@\($0.nodeID)") },
                uniquingKeysWith: { a, _ in a }))
    }

    /// Asks the connected node to leave the cluster gracefully (what `plex node stop` does): it hands its
    /// durable actors to their new owners within its drain timeout, answers, and stops.
    /// - Returns: How many durable actors moved and how many stayed, and the node's account of it.
    public func stopNode(timeout: Duration = .seconds(60)) async throws -> (moved: Int, notMoved: Int, outcome: String)
    {
        var request = Plexspaces_V1_AdminRequest()
        request.leave = Plexspaces_V1_LeaveCommand()
        let reply = try await admin(request, timeout: timeout)
        return (Int(reply.moved), Int(reply.notMoved), reply.outcome)
    }

    /// Asks the connected node to take `member` out of the ring for good (what `plex cluster remove` does).
    /// - Returns: The node's account of what was done and what is lost, or why it refused.
    ///
    /// The node asks every member it can reach whether it agrees that `member` is unreachable (up to 5 s each),
    /// so allow for that in `timeout`.
    public func removeMember(_ member: String, force: Bool = false, timeout: Duration = .seconds(15)) async throws
        -> String
    {
        var request = Plexspaces_V1_AdminRequest()
        request.remove.nodeID = member
        request.remove.force = force
        return try await admin(request, timeout: timeout).outcome
    }

    private func admin(_ request: Plexspaces_V1_AdminRequest, timeout: Duration) async throws
        -> Plexspaces_V1_AdminReply
    {
        let reply = try await link.call(
            kind: .adminRequest, flags: [], body: Wire.body(request), deadline: deadline(timeout).0)
        guard reply.kind == .adminReply else {
            throw reply.kind == .errorReply
                ? PlexNode.callError(from: reply) : CallError(.codecFailure, "unexpected \(reply.kind) in reply")
        }
        return try Wire.decode(Plexspaces_V1_AdminReply.self, from: reply.body)
    }

    /// Sends a frame of kind `rawKind` with `body` as it is (tests of bad input).
    package func sendRaw(kind rawKind: UInt8, body: [UInt8]) {
        guard let kind = Wire.FrameKind(rawValue: rawKind) else { return }
        connection.send(Wire.Frame(kind: kind, correlationID: 1, body: ByteBuffer(bytes: body)))
    }

    /// Whether the connection is still open.
    package var isConnected: Bool { link.isConnected }

    /// Closes the connection.
    public func close() async {
        connection.close()
        await transport.shutdown()
    }
}

final class ClientDelegate: ConnectionDelegate {
    let link = Mutex<PeerLink?>(nil)
    func connectionEstablished(_ connection: any Connection) {}
    func received(_ frame: Wire.Frame, on connection: any Connection) {
        link.withLock { $0 }?.complete(frame)
    }
    func connectionClosed(_ connection: any Connection, error: (any Error)?) {
        link.withLock { $0 }?.detach(connection)
    }
}
