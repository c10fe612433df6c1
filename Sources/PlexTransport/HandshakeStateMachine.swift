internal import FoundationEssentials
public import PlexCertificates
internal import PlexCore
public import PlexWire

/// The connection handshake as a value: feed it frames, carry out the actions it returns.
///
/// Mutual authentication by HMAC-SHA256 challenge: each side sends a random nonce and proves knowledge of
/// the cluster secret over both nonces, both sides' identities as it sent or received them, and the
/// direction (see ``HandshakeProof``), so a proof made for another connection, or relayed through a
/// man in the middle that changed who either side claims to be, is refused. See
/// `proto/plexspaces/v1/handshake.proto`.
///
/// Over TLS (``requiresCertificate``) the connection's TLS layer tells the machine who the peer's certificate
/// speaks for (``certify(_:)``) before the peer's first handshake frame; a peer that claims a node id other
/// than its certificate's is refused, so one node's certificate cannot speak for another.
public struct HandshakeStateMachine: Sendable {
    /// Which side of the connection this machine runs on.
    public enum Side: Sendable { case initiator, acceptor }

    /// What the caller must do next.
    public enum Action: Sendable, Equatable {
        /// Send this frame to the peer.
        case send(Wire.Frame)
        /// The handshake succeeded; the peer is who it says.
        case established(PeerIdentity)
        /// Refuse: send the frame (if any) to tell the peer why, then close.
        case refuse(Wire.Frame?, TransportError)
    }

    enum State: Sendable {
        case initial
        case awaitingChallenge(myNonce: [UInt8])
        case awaitingProof(peer: PeerIdentity, peerHello: HandshakeProof.Party, myNonce: [UInt8], key: [UInt8])
        case awaitingWelcome(peer: PeerIdentity)
        case established(PeerIdentity)
        case failed
    }

    let side: Side
    let configuration: HandshakeConfiguration
    let local: PeerIdentity
    /// Whether the peer must have shown a certificate (the connection runs over TLS).
    public let requiresCertificate: Bool
    /// Who the peer's certificate speaks for, once TLS has verified it.
    private(set) var peerCertificate: PlexIdentity?
    var state: State = .initial

    /// Creates a machine; with `requiresCertificate`, a peer is refused unless ``certify(_:)`` named who its
    /// certificate speaks for, and that agrees with who it claims to be.
    public init(
        side: Side, configuration: HandshakeConfiguration, local: PeerIdentity, requiresCertificate: Bool = false
    ) {
        self.side = side
        self.configuration = configuration
        self.local = local
        self.requiresCertificate = requiresCertificate
    }

    /// Records who the peer's verified TLS certificate speaks for.
    public mutating func certify(_ identity: PlexIdentity) {
        peerCertificate = identity
    }

    /// Whether the handshake has finished successfully.
    public var isEstablished: Bool {
        if case .established = state { return true }
        return false
    }

    /// Starts the handshake; the initiator sends its hello.
    public mutating func start(nonce: [UInt8] = Self.makeNonce()) -> [Action] {
        guard side == .initiator, case .initial = state else { return [] }
        var hello = Plexspaces_V1_Hello()
        hello.protocolVersion = UInt32(Wire.protocolVersion)
        hello.clusterName = configuration.clusterName
        hello.role = local.role == .node ? .node : .client
        hello.nodeID = local.nodeID.rawValue
        hello.incarnation = local.incarnation
        hello.listenAddress = local.listenAddress
        hello.nonce = Data(nonce)
        if local.role == .client && configuration.credential != .cluster {
            hello.credential = configuration.credential.rawValue
        }
        var message = Plexspaces_V1_Handshake()
        message.hello = hello
        state = .awaitingChallenge(myNonce: nonce)
        return [.send(Wire.Frame(kind: .handshake, body: Wire.body(message)))]
    }

    /// Handles a frame that arrived before the handshake finished.
    public mutating func receive(_ frame: Wire.Frame, nonce: [UInt8] = Self.makeNonce()) -> [Action] {
        do {
            switch (state, frame.kind) {
            case (.initial, .handshake) where side == .acceptor:
                return try receiveHello(Wire.decode(Plexspaces_V1_Handshake.self, from: frame.body), nonce: nonce)
            case (.awaitingChallenge(let myNonce), .handshakeAck):
                return try receiveChallenge(
                    Wire.decode(Plexspaces_V1_HandshakeAck.self, from: frame.body), myNonce: myNonce)
            case (.awaitingProof(let peer, let peerHello, let myNonce, let key), .handshake):
                return try receiveProof(
                    Wire.decode(Plexspaces_V1_Handshake.self, from: frame.body), peer: peer, peerHello: peerHello,
                    myNonce: myNonce, key: key)
            case (.awaitingWelcome(let peer), .handshakeAck):
                let ack = try Wire.decode(Plexspaces_V1_HandshakeAck.self, from: frame.body)
                guard case .welcome = ack.step else { return fail(.protocolViolation, "expected welcome") }
                state = .established(peer)
                return [.established(peer)]
            case (_, .errorReply):
                let error = try Wire.decode(Plexspaces_V1_ErrorBody.self, from: frame.body)
                state = .failed
                return [.refuse(nil, TransportError(.handshakeRefused, "peer refused: \(error.message)"))]
            default:
                return fail(.protocolViolation, "unexpected \(frame.kind) frame during the handshake")
            }
        } catch let error as FrameError {
            return fail(.protocolViolation, error.description)
        } catch {
            return fail(.protocolViolation, "\(error)")
        }
    }

    private mutating func receiveHello(_ message: Plexspaces_V1_Handshake, nonce: [UInt8]) throws -> [Action] {
        guard case .hello(let hello) = message.step else { return fail(.protocolViolation, "expected hello") }
        guard hello.protocolVersion == UInt32(Wire.protocolVersion) else {
            return refuse("protocol version \(hello.protocolVersion) is not \(Wire.protocolVersion)")
        }
        guard hello.clusterName == configuration.clusterName else {
            return refuse("cluster \(Self.logSafe(hello.clusterName)) is not '\(configuration.clusterName)'")
        }
        guard NodeID.isValid(hello.nodeID), hello.nonce.count == 32 else {
            return refuse("hello has an invalid node id or nonce")
        }
        let role: PeerRole = hello.role == .client ? .client : .node
        if let reason = certificateRefusal(claimedRole: role, nodeID: hello.nodeID) { return refuse(reason) }
        let key: [UInt8]
        var peer = PeerIdentity(
            role: role, nodeID: NodeID(unchecked: hello.nodeID), incarnation: hello.incarnation,
            listenAddress: hello.listenAddress, certified: peerCertificate)
        switch hello.credential {
        case "": key = configuration.secret
        case HandshakeConfiguration.Credential.caller.rawValue where role == .client:
            guard let callerSecret = configuration.callerSecret else {
                return refuse("this cluster takes no caller secret: prove the cluster secret (or use TLS)")
            }
            key = callerSecret
            peer.credential = .caller
        case HandshakeConfiguration.Credential.certificate.rawValue where role == .client:
            // Over TLS a client certificate is the credential; the proof then only binds the transcript.
            guard requiresCertificate, case .client? = peerCertificate else {
                return refuse("only a client with a TLS client certificate may connect without a secret")
            }
            key = HandshakeConfiguration.certificateKey
            peer.credential = .certificate
        default:
            return refuse(
                "unknown credential \(Self.logSafe(hello.credential)) for a \(role == .client ? "client" : "node")")
        }
        let initiator = HandshakeProof.Party(peer, nonce: Array(hello.nonce))
        var challenge = Plexspaces_V1_Challenge()
        challenge.protocolVersion = UInt32(Wire.protocolVersion)
        challenge.clusterName = configuration.clusterName
        challenge.nodeID = local.nodeID.rawValue
        challenge.incarnation = local.incarnation
        challenge.listenAddress = local.listenAddress
        challenge.nonce = Data(nonce)
        challenge.proof = Data(
            HandshakeProof.make(
                secret: key, madeBy: .acceptor, clusterName: configuration.clusterName, initiator: initiator,
                acceptor: HandshakeProof.Party(local, nonce: nonce)))
        var ack = Plexspaces_V1_HandshakeAck()
        ack.challenge = challenge
        state = .awaitingProof(peer: peer, peerHello: initiator, myNonce: nonce, key: key)
        return [.send(Wire.Frame(kind: .handshakeAck, body: Wire.body(ack)))]
    }

    private mutating func receiveChallenge(_ message: Plexspaces_V1_HandshakeAck, myNonce: [UInt8]) throws -> [Action] {
        guard case .challenge(let challenge) = message.step else {
            return fail(.protocolViolation, "expected challenge")
        }
        guard challenge.clusterName == configuration.clusterName,
            challenge.protocolVersion == UInt32(Wire.protocolVersion)
        else {
            return fail(
                .handshakeRefused,
                "peer is in cluster \(Self.logSafe(challenge.clusterName)) (version \(challenge.protocolVersion))")
        }
        guard NodeID.isValid(challenge.nodeID), challenge.nonce.count == 32 else {
            return refuse("challenge has an invalid node id or nonce")
        }
        if let reason = certificateRefusal(claimedRole: .node, nodeID: challenge.nodeID) { return refuse(reason) }
        let peer = PeerIdentity(
            role: .node, nodeID: NodeID(unchecked: challenge.nodeID), incarnation: challenge.incarnation,
            listenAddress: challenge.listenAddress, certified: peerCertificate)
        let initiator = HandshakeProof.Party(local, nonce: myNonce)
        let acceptor = HandshakeProof.Party(peer, nonce: Array(challenge.nonce))
        guard verify(challenge.proof, madeBy: .acceptor, initiator: initiator, acceptor: acceptor) else {
            // Tell the acceptor too, so both ends log the refusal.
            return refuse(
                "peer \(challenge.nodeID) did not prove the \(local.role == .client ? configuration.credential.rawValue : "cluster") secret for this connection"
            )
        }
        var proofMessage = Plexspaces_V1_Proof()
        proofMessage.proof = Data(proof(madeBy: .initiator, initiator: initiator, acceptor: acceptor))
        var handshake = Plexspaces_V1_Handshake()
        handshake.proof = proofMessage
        state = .awaitingWelcome(peer: peer)
        return [.send(Wire.Frame(kind: .handshake, body: Wire.body(handshake)))]
    }

    private mutating func receiveProof(
        _ message: Plexspaces_V1_Handshake, peer: PeerIdentity, peerHello: HandshakeProof.Party, myNonce: [UInt8],
        key: [UInt8]
    ) throws -> [Action] {
        guard case .proof(let proofMessage) = message.step else { return fail(.protocolViolation, "expected proof") }
        guard
            HandshakeProof.verify(
                proofMessage.proof, secret: key, madeBy: .initiator, clusterName: configuration.clusterName,
                initiator: peerHello, acceptor: HandshakeProof.Party(local, nonce: myNonce))
        else {
            return refuse("\(peer.nodeID) did not prove the \(peer.credential.rawValue) secret for this connection")
        }
        var ack = Plexspaces_V1_HandshakeAck()
        ack.welcome = Plexspaces_V1_Welcome()
        state = .established(peer)
        return [.send(Wire.Frame(kind: .handshakeAck, body: Wire.body(ack))), .established(peer)]
    }

    private mutating func fail(_ code: TransportError.Code, _ message: String) -> [Action] {
        state = .failed
        return [.refuse(nil, TransportError(code, message))]
    }

    /// Why a peer claiming `claimedRole` and `nodeID` is refused over TLS, or `nil`. A node must hold a
    /// certificate for its own node id; a client may show a client certificate (its role decides what it may
    /// do) or a node's (a tool running with a node's credentials has a node's rights).
    private func certificateRefusal(claimedRole: PeerRole, nodeID: String) -> String? {
        guard requiresCertificate else { return nil }
        guard let certificate = peerCertificate else { return "the peer showed no verified TLS certificate" }
        switch (claimedRole, certificate) {
        case (.node, .node(let id)) where id == nodeID: return nil
        case (.client, _): return nil
        default: return "the peer claims to be node \(nodeID), but its certificate is for \(certificate)"
        }
    }

    /// Ends the handshake now: tells the peer `reason` in an error frame, then closes.
    mutating func refuse(_ reason: String) -> [Action] {
        state = .failed
        return [.refuse(Self.refusal(reason), TransportError(.handshakeRefused, reason))]
    }

    /// A string the peer chose, as it may appear in a refusal (which is logged and sent back): quoted, at most
    /// `limit` characters, control characters escaped, so a stranger can neither make one log line large nor
    /// forge lines.
    static func logSafe(_ text: String, limit: Int = 64) -> String {
        (text.count > limit ? String(text.prefix(limit)) + "…" : text).debugDescription
    }

    /// The error frame that tells a peer why its handshake is refused.
    static func refusal(_ reason: String) -> Wire.Frame {
        var body = Plexspaces_V1_ErrorBody()
        body.message = reason
        body.remoteCode = "handshake-refused"
        return Wire.Frame(kind: .errorReply, body: Wire.body(body))
    }

    /// The key this side's proofs use as the initiator: its secret, or the public certificate key.
    private var ownKey: [UInt8] {
        configuration.credential == .certificate ? HandshakeConfiguration.certificateKey : configuration.secret
    }

    /// The proof `side` makes (or must have made) on this connection.
    func proof(madeBy side: Side, initiator: HandshakeProof.Party, acceptor: HandshakeProof.Party) -> [UInt8] {
        HandshakeProof.make(
            secret: ownKey, madeBy: side, clusterName: configuration.clusterName, initiator: initiator,
            acceptor: acceptor)
    }

    /// Checks the peer's proof in constant time.
    func verify(
        _ candidate: some Collection<UInt8>, madeBy side: Side, initiator: HandshakeProof.Party,
        acceptor: HandshakeProof.Party
    ) -> Bool {
        HandshakeProof.verify(
            candidate, secret: ownKey, madeBy: side, clusterName: configuration.clusterName,
            initiator: initiator, acceptor: acceptor)
    }

    /// 32 random bytes.
    public static func makeNonce() -> [UInt8] {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in UInt8.random(in: 0...255, using: &generator) }
    }
}
