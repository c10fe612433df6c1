public import Logging
internal import NIOCore
public import PlexCore
public import PlexTransport
internal import PlexWire
internal import Synchronization

/// A connection to one node for tools that are not members: the CLI, benchmarks, scripts.
///
/// A client proves the cluster secret like a node does, but never joins the ring. Calls go to the node it
/// is connected to, which routes them to the owner. Calls are encoded, and replies and errors decoded, by
/// the same wire code a node uses (`Wire.callBody`, `Wire.response`), over the same ``PeerLink``.
public final class PlexClient: Sendable {
    let transport: TCPTransport
    let link: PeerLink
    let connection: any Connection
    let codec: any MessageCodec
    let sequence = Atomic<UInt64>(0)
    let origin = UInt64.random(in: 1...UInt64.max)
    /// The deadline sweeper; cancelled and awaited by ``close()``.
    private let tasks = BackgroundTasks()

    init(transport: TCPTransport, link: PeerLink, connection: any Connection, codec: any MessageCodec) {
        self.transport = transport
        self.link = link
        self.connection = connection
        self.codec = codec
    }

    /// Connects to the node at `address`, proving `secret`: the cluster secret, or with `credential` `.caller`
    /// the node's caller secret (calls and status only). With `tls`, over mutual TLS with a client certificate
    /// (its role decides what the client may do) or a node's.
    /// - Throws: ``TransportError`` when the node cannot be reached or refuses the handshake.
    public static func connect(
        to address: PeerAddress, clusterName: String, secret: [UInt8], codec: any MessageCodec = BinaryMessageCodec(),
        credential: HandshakeConfiguration.Credential = .cluster, tls: TransportTLS? = nil,
        logger: Logger = Logger(label: "plex.client")
    ) async throws -> PlexClient {
        let handshake = HandshakeConfiguration(clusterName: clusterName, secret: secret, credential: credential)
        let transport = TCPTransport(configuration: .init(handshake: handshake, tls: tls), logger: logger)
        transport.setLocalIdentity(
            PeerIdentity(role: .client, nodeID: NodeID(unchecked: "client"), incarnation: 0, listenAddress: ""))
        let delegate = ClientDelegate()
        let connection = try await transport.connect(to: address, delegate: delegate)
        let link = PeerLink(peer: connection.peer.nodeID, maximumInFlight: 1 << 20)
        _ = link.attachIfDisconnected(connection)
        delegate.link.withLock { $0 = link }
        let client = PlexClient(transport: transport, link: link, connection: connection, codec: codec)
        client.tasks.start { [link] in
            while !Task.isCancelled && link.isConnected {
                link.expire(now: Deadline.now())
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        return client
    }

    /// The node this client talks to.
    public var node: NodeID { connection.peer.nodeID }

    private func nextCallID() -> CallID {
        CallID(origin: origin, sequence: sequence.add(1, ordering: .relaxed).newValue)
    }

    /// Calls `actor` with a JSON request and returns the JSON reply.
    /// - Throws: ``CallError``.
    public func call(
        _ actor: ActorID, json: [UInt8], timeout: Duration = .seconds(5), idempotencyKey: String? = nil
    ) async throws -> [UInt8] {
        try CallDispatcher.requireWireStrings(actor, idempotencyKey)
        let now = Deadline.now()
        let deadline = Deadline.after(timeout, now: now)
        let body = Wire.callBody(
            to: actor, payload: json, idempotencyKey: idempotencyKey, deadline: deadline, now: now,
            callID: nextCallID())
        let reply = try await link.call(kind: .call, flags: .jsonPayload, body: body, deadline: deadline)
        return try Wire.responseBytes(from: reply)
    }

    /// Calls an actor with a typed request over the binary codec.
    /// - Throws: ``CallError``.
    public func ask<A: VirtualActor>(
        _ type: A.Type, key: String, _ request: A.Request, timeout: Duration = .seconds(5),
        idempotencyKey: String? = nil
    ) async throws -> A.Response {
        try CallDispatcher.requireWireStrings(ActorID(typeName: A.typeName, key: key), idempotencyKey)
        let now = Deadline.now()
        let deadline = Deadline.after(timeout, now: now)
        let body = try Wire.callBody(
            to: ActorID(typeName: A.typeName, key: key), request, codec: codec, idempotencyKey: idempotencyKey,
            deadline: deadline, now: now, callID: nextCallID())
        let reply = try await link.call(kind: .call, flags: [], body: body, deadline: deadline)
        return try Wire.response(A.Response.self, from: reply, codec: codec)
    }

    /// The cluster as the connected node sees it.
    public func status(timeout: Duration = .seconds(5)) async throws -> ClusterStatus {
        try await admin(.status, timeout: timeout).status
    }

    /// Asks the connected node to leave the cluster gracefully (what `plex node stop` does): it hands its
    /// durable actors to their new owners within its drain timeout, answers, and stops.
    /// - Returns: How many durable actors moved and how many stayed, and the node's account of it.
    public func stopNode(timeout: Duration = .seconds(60)) async throws -> (moved: Int, notMoved: Int, outcome: String)
    {
        let reply = try await admin(.leave, timeout: timeout)
        return (reply.moved, reply.notMoved, reply.outcome)
    }

    /// Asks the connected node to take `member` out of the ring for good (what `plex cluster remove` does).
    /// - Returns: The node's account of what was done and what is lost, or why it refused.
    ///
    /// The node asks every member it can reach whether it agrees that `member` is unreachable (up to 5 s each),
    /// so allow for that in `timeout`.
    public func removeMember(_ member: String, force: Bool = false, timeout: Duration = .seconds(15)) async throws
        -> String
    {
        try await admin(.remove(NodeID(unchecked: member), force: force), timeout: timeout).outcome
    }

    private func admin(_ request: AdminRequest, timeout: Duration) async throws -> AdminReply {
        let reply = try await link.call(
            kind: .adminRequest, flags: [], body: request.body, deadline: Deadline.after(timeout))
        switch reply.kind {
        case .adminReply: return try AdminReply(frame: reply)
        case .errorReply: throw Wire.callError(from: reply)
        default: throw CallError(.codecFailure, "unexpected \(reply.kind) in reply")
        }
    }

    /// Sends a frame of kind `rawKind` with `body` as it is (tests of bad input).
    package func sendRaw(kind rawKind: UInt8, body: [UInt8]) {
        guard let kind = Wire.FrameKind(rawValue: rawKind) else { return }
        connection.send(Wire.Frame(kind: kind, correlationID: 1, body: ByteBuffer(bytes: body)))
    }

    /// Whether the connection is still open.
    package var isConnected: Bool { link.isConnected }

    /// Closes the connection and waits until nothing the client started runs.
    public func close() async {
        connection.close()
        await tasks.cancelAndWait()
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
