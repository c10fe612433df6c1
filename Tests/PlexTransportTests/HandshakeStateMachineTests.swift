import Foundation
import NIOCore
import PlexCertificates
import PlexCore
import PlexWire
import Testing

@testable import PlexTransport

/// Drives two handshake machines against each other, frame by frame, with no I/O.
struct HandshakePair {
    var initiator: HandshakeStateMachine
    var acceptor: HandshakeStateMachine

    init(
        clusterA: String = "c", secretA: String = "secret-0123456789", clusterB: String = "c",
        secretB: String = "secret-0123456789"
    ) {
        initiator = HandshakeStateMachine(
            side: .initiator, configuration: HandshakeConfiguration(clusterName: clusterA, secret: Array(secretA.utf8)),
            local: PeerIdentity(
                role: .node, nodeID: NodeID(unchecked: "a"), incarnation: 1, listenAddress: "127.0.0.1:1"))
        acceptor = HandshakeStateMachine(
            side: .acceptor, configuration: HandshakeConfiguration(clusterName: clusterB, secret: Array(secretB.utf8)),
            local: PeerIdentity(
                role: .node, nodeID: NodeID(unchecked: "b"), incarnation: 7, listenAddress: "127.0.0.1:2"))
    }

    /// Runs the exchange to the end; returns what each side concluded.
    mutating func run() -> (initiator: [HandshakeStateMachine.Action], acceptor: [HandshakeStateMachine.Action]) {
        var toAcceptor = sends(initiator.start())
        var initiatorEnd: [HandshakeStateMachine.Action] = []
        var acceptorEnd: [HandshakeStateMachine.Action] = []
        for _ in 0..<4 {
            var toInitiator: [Wire.Frame] = []
            for frame in toAcceptor {
                let actions = acceptor.receive(frame)
                toInitiator += sends(actions)
                acceptorEnd += actions.filter { !$0.isSend }
            }
            toAcceptor = []
            for frame in toInitiator {
                let actions = initiator.receive(frame)
                toAcceptor += sends(actions)
                initiatorEnd += actions.filter { !$0.isSend }
            }
            if toAcceptor.isEmpty { break }
        }
        return (initiatorEnd, acceptorEnd)
    }

    private func sends(_ actions: [HandshakeStateMachine.Action]) -> [Wire.Frame] {
        actions.compactMap {
            switch $0 {
            case .send(let frame): frame
            case .refuse(let frame?, _): frame
            default: nil
            }
        }
    }
}

extension HandshakeStateMachine.Action {
    var isSend: Bool { if case .send = self { true } else { false } }
    var established: PeerIdentity? { if case .established(let peer) = self { peer } else { nil } }
    var refusal: TransportError? { if case .refuse(_, let error) = self { error } else { nil } }
}

@Suite("Handshake state machine")
struct HandshakeStateMachineTests {
    @Test("same cluster and secret: both sides learn who the other is")
    func success() {
        var pair = HandshakePair()
        let (initiator, acceptor) = pair.run()
        #expect(initiator.compactMap(\.established).first?.nodeID.rawValue == "b")
        #expect(initiator.compactMap(\.established).first?.incarnation == 7)
        #expect(acceptor.compactMap(\.established).first?.nodeID.rawValue == "a")
        #expect(acceptor.compactMap(\.established).first?.listenAddress == "127.0.0.1:1")
        #expect(pair.initiator.isEstablished && pair.acceptor.isEstablished)
    }

    @Test("a wrong secret is refused by both sides, and the secret never appears in any frame")
    func wrongSecret() {
        var pair = HandshakePair(secretB: "other-secret-999999")
        let (initiator, acceptor) = pair.run()
        #expect(initiator.compactMap(\.refusal).first?.code == .handshakeRefused)
        #expect(acceptor.compactMap(\.established).isEmpty)
        #expect(!pair.initiator.isEstablished && !pair.acceptor.isEstablished)
        // The proof frames carry HMACs, never the secret bytes.
        var again = HandshakePair(secretB: "other-secret-999999")
        let hello = again.initiator.start()
        for case .send(let frame) in hello {
            #expect(!String(buffer: frame.body).contains("secret-0123456789"))
        }
    }

    @Test("another cluster name is refused with a reason the peer can log")
    func wrongCluster() {
        var pair = HandshakePair(clusterB: "other")
        let (initiator, acceptor) = pair.run()
        #expect(acceptor.compactMap(\.refusal).first?.code == .handshakeRefused)
        #expect(initiator.compactMap(\.refusal).first?.message.contains("cluster") == true)
    }

    @Test("a cluster name the stranger chose appears in the refusal quoted, escaped and cut: no forged log lines")
    func hostileClusterName() {
        let hostile = "x\nerror forged: admin logged in" + String(repeating: "A", count: 60_000)
        var pair = HandshakePair(clusterA: hostile)
        let (_, acceptor) = pair.run()
        let message = acceptor.compactMap(\.refusal).first?.message ?? ""
        #expect(message.contains("cluster"), "\(message)")
        #expect(!message.contains("\n"), "a newline from the peer would start a forged log line")
        #expect(message.contains(#"x\nerror forged"#), "escaped, still readable: \(message)")
        #expect(message.count < 160, "\(message.count) characters")
    }

    @Test("a call before the handshake is a protocol violation")
    func callBeforeHandshake() {
        var acceptor = HandshakePair().acceptor
        let actions = acceptor.receive(Wire.Frame(kind: .call, body: ByteBuffer()))
        #expect(actions.compactMap(\.refusal).first?.code == .protocolViolation)
    }

    @Test("a garbage hello is a protocol violation")
    func garbageHello() {
        var acceptor = HandshakePair().acceptor
        let actions = acceptor.receive(Wire.Frame(kind: .handshake, body: ByteBuffer(bytes: [0xFF, 0xFF, 0xFF])))
        #expect(actions.compactMap(\.refusal).first?.code == .protocolViolation)
    }

    @Test("a replayed proof from another session does not authenticate")
    func replay() {
        // Record a successful session's client proof, then replay it against a fresh acceptor.
        var recorded = HandshakePair()
        var toAcceptor: [Wire.Frame] = []
        for case .send(let f) in recorded.initiator.start() { toAcceptor.append(f) }
        var challenge: [Wire.Frame] = []
        for case .send(let f) in recorded.acceptor.receive(toAcceptor[0]) { challenge.append(f) }
        var proof: [Wire.Frame] = []
        for case .send(let f) in recorded.initiator.receive(challenge[0]) { proof.append(f) }

        var fresh = HandshakePair().acceptor
        _ = fresh.receive(toAcceptor[0])  // same hello, but the acceptor picks a new nonce
        let actions = fresh.receive(proof[0])
        #expect(actions.compactMap(\.refusal).first?.code == .handshakeRefused)
    }
}

/// One identity field changed, as a relay or an insider with a proof from another connection would change it.
enum ClaimChange: String, CaseIterable, Sendable, CustomStringConvertible {
    case nodeID, incarnation, listenAddress, role

    func apply(to identity: PeerIdentity) -> PeerIdentity {
        var changed = identity
        switch self {
        case .nodeID: changed.nodeID = NodeID(unchecked: "mallory")
        case .incarnation: changed.incarnation += 1
        case .listenAddress: changed.listenAddress = "127.0.0.1:9999"
        case .role: changed.role = identity.role == .node ? .client : .node
        }
        return changed
    }

    func apply(to hello: inout Plexspaces_V1_Hello) {
        switch self {
        case .nodeID: hello.nodeID = "mallory"
        case .incarnation: hello.incarnation += 1
        case .listenAddress: hello.listenAddress = "127.0.0.1:9999"
        case .role: hello.role = hello.role == .node ? .client : .node
        }
    }

    var description: String { rawValue }
}

@Suite("Handshake proofs are bound to the connection")
struct HandshakeBindingTests {
    static let configuration = HandshakeConfiguration(clusterName: "c", secret: Array("secret-0123456789".utf8))
    static let a = PeerIdentity(role: .node, nodeID: NodeID(unchecked: "a"), incarnation: 1, listenAddress: "h:1")
    static let b = PeerIdentity(role: .node, nodeID: NodeID(unchecked: "b"), incarnation: 7, listenAddress: "h:2")
    static let initiatorNonce = [UInt8](repeating: 0x11, count: 32)
    static let acceptorNonce = [UInt8](repeating: 0x22, count: 32)

    static func machine(_ side: HandshakeStateMachine.Side, _ local: PeerIdentity) -> HandshakeStateMachine {
        HandshakeStateMachine(side: side, configuration: configuration, local: local)
    }

    static func sent(_ actions: [HandshakeStateMachine.Action]) throws -> Wire.Frame {
        try #require(actions.compactMap { if case .send(let f) = $0 { f } else { nil } }.first)
    }

    /// Runs `initiator` against a fresh acceptor `b` up to the initiator's proof, with fixed nonces.
    static func proofFrame(from initiator: PeerIdentity) throws -> Wire.Frame {
        var client = machine(.initiator, initiator)
        var server = machine(.acceptor, b)
        let hello = try sent(client.start(nonce: initiatorNonce))
        let challenge = try sent(server.receive(hello, nonce: acceptorNonce))
        return try sent(client.receive(challenge))
    }

    @Test(
        "the same nonces and a proof from a connection that claimed another identity: refused",
        arguments: ClaimChange.allCases)
    func proofFromAnotherIdentity(change: ClaimChange) throws {
        // An insider holds a valid proof from its own connection (identity changed); the acceptor saw a's hello.
        let relayed = try Self.proofFrame(from: change.apply(to: Self.a))
        var client = Self.machine(.initiator, Self.a)
        var server = Self.machine(.acceptor, Self.b)
        _ = try Self.sent(
            server.receive(try Self.sent(client.start(nonce: Self.initiatorNonce)), nonce: Self.acceptorNonce))
        let actions = server.receive(relayed)
        #expect(actions.compactMap(\.refusal).first?.code == .handshakeRefused)
        #expect(actions.compactMap(\.refusal).first?.message.contains("did not prove the cluster secret") == true)
        #expect(!server.isEstablished)
        // The genuine proof for this connection is accepted, so the refusal was about the identity alone.
        var genuine = Self.machine(.acceptor, Self.b)
        var honest = Self.machine(.initiator, Self.a)
        _ = genuine.receive(try Self.sent(honest.start(nonce: Self.initiatorNonce)), nonce: Self.acceptorNonce)
        let ok = genuine.receive(try Self.proofFrame(from: Self.a))
        #expect(ok.compactMap(\.established).first == Self.a)
    }

    @Test("a challenge made for a hello a relay rewrote is refused by the initiator", arguments: ClaimChange.allCases)
    func challengeForRewrittenHello(change: ClaimChange) throws {
        var client = Self.machine(.initiator, Self.a)
        var server = Self.machine(.acceptor, Self.b)
        let hello = try Self.sent(client.start(nonce: Self.initiatorNonce))
        var message = try Wire.decode(Plexspaces_V1_Handshake.self, from: hello.body)
        guard case .hello(var claims) = message.step else {
            Issue.record("expected a hello")
            return
        }
        change.apply(to: &claims)
        message.hello = claims
        let challenge = try Self.sent(
            server.receive(Wire.Frame(kind: .handshake, body: Wire.body(message)), nonce: Self.acceptorNonce))
        let actions = client.receive(challenge)
        #expect(actions.compactMap(\.refusal).first?.code == .handshakeRefused)
        #expect(!client.isEstablished)
        // It tells the acceptor why, so both ends log the refusal.
        #expect(actions.contains { if case .refuse(let frame?, _) = $0 { frame.kind == .errorReply } else { false } })
    }

    @Test(
        "a challenge whose acceptor identity a relay rewrote is refused",
        arguments: [ClaimChange.nodeID, .incarnation, .listenAddress])
    func rewrittenChallenge(change: ClaimChange) throws {
        var client = Self.machine(.initiator, Self.a)
        var server = Self.machine(.acceptor, Self.b)
        let challenge = try Self.sent(
            server.receive(try Self.sent(client.start(nonce: Self.initiatorNonce)), nonce: Self.acceptorNonce))
        var message = try Wire.decode(Plexspaces_V1_HandshakeAck.self, from: challenge.body)
        guard case .challenge(var claims) = message.step else {
            Issue.record("expected a challenge")
            return
        }
        let changed = change.apply(to: Self.b)
        claims.nodeID = changed.nodeID.rawValue
        claims.incarnation = changed.incarnation
        claims.listenAddress = changed.listenAddress
        message.challenge = claims
        let actions = client.receive(Wire.Frame(kind: .handshakeAck, body: Wire.body(message)))
        #expect(actions.compactMap(\.refusal).first?.code == .handshakeRefused)
    }

    @Test("a proof made by the acceptor, echoed back as the initiator's, is refused (direction)")
    func reflectedProof() throws {
        var client = Self.machine(.initiator, Self.a)
        var server = Self.machine(.acceptor, Self.b)
        let challenge = try Self.sent(
            server.receive(try Self.sent(client.start(nonce: Self.initiatorNonce)), nonce: Self.acceptorNonce))
        let ack = try Wire.decode(Plexspaces_V1_HandshakeAck.self, from: challenge.body)
        var proof = Plexspaces_V1_Proof()
        proof.proof = ack.challenge.proof
        var message = Plexspaces_V1_Handshake()
        message.proof = proof
        let actions = server.receive(Wire.Frame(kind: .handshake, body: Wire.body(message)))
        #expect(actions.compactMap(\.refusal).first?.code == .handshakeRefused)
    }

    @Test("the proof of the connection in the other direction (b dialled a, same nonces) is refused")
    func otherDirection() throws {
        // b dials a with the nonces swapped: every field of the transcript is present, in the other order.
        let mirrored = HandshakeProof.make(
            secret: Self.configuration.secret, madeBy: .initiator, clusterName: "c",
            initiator: .init(Self.b, nonce: Self.acceptorNonce), acceptor: .init(Self.a, nonce: Self.initiatorNonce))
        var client = Self.machine(.initiator, Self.a)
        var server = Self.machine(.acceptor, Self.b)
        _ = server.receive(try Self.sent(client.start(nonce: Self.initiatorNonce)), nonce: Self.acceptorNonce)
        var proof = Plexspaces_V1_Proof()
        proof.proof = Data(mirrored)
        var message = Plexspaces_V1_Handshake()
        message.proof = proof
        let actions = server.receive(Wire.Frame(kind: .handshake, body: Wire.body(message)))
        #expect(actions.compactMap(\.refusal).first?.code == .handshakeRefused)
    }
}

/// Over TLS the machine checks the peer's claimed node id against the id its certificate names.
@Suite("Handshake over TLS: claimed identity against the certificate")
struct HandshakeCertificateTests {
    static let configuration = HandshakeBindingTests.configuration
    static let a = HandshakeBindingTests.a
    static let b = HandshakeBindingTests.b

    static func machine(_ side: HandshakeStateMachine.Side, _ local: PeerIdentity) -> HandshakeStateMachine {
        HandshakeStateMachine(side: side, configuration: configuration, local: local, requiresCertificate: true)
    }

    /// The acceptor's answer to a hello from `claimed`, after TLS told it about `certificate`.
    static func acceptorAnswer(claimed: PeerIdentity, certificate: PlexIdentity?) throws
        -> [HandshakeStateMachine.Action]
    {
        var client = machine(.initiator, claimed)
        var server = machine(.acceptor, b)
        if let certificate { server.certify(certificate) }
        return server.receive(try HandshakeBindingTests.sent(client.start()))
    }

    @Test("a hello whose node id matches the certificate is challenged; the established peer carries it")
    func matching() throws {
        var client = Self.machine(.initiator, Self.a)
        var server = Self.machine(.acceptor, Self.b)
        client.certify(.node("b"))
        server.certify(.node("a"))
        let challenge = try HandshakeBindingTests.sent(server.receive(try HandshakeBindingTests.sent(client.start())))
        let proof = try HandshakeBindingTests.sent(client.receive(challenge))
        let established = server.receive(proof).compactMap { if case .established(let p) = $0 { p } else { nil } }
        #expect(established.first?.certified == .node("a"))
    }

    @Test(
        "refused: another node's certificate, a client certificate claiming to be a node, no certificate at all",
        arguments: [PlexIdentity.node("c"), .client("a", role: .admin), nil] as [PlexIdentity?])
    func mismatch(certificate: PlexIdentity?) throws {
        let actions = try Self.acceptorAnswer(claimed: Self.a, certificate: certificate)
        let refusal = try #require(actions.compactMap(\.refusal).first)
        #expect(refusal.code == .handshakeRefused)
        #expect(refusal.message.contains(certificate == nil ? "no verified TLS certificate" : "claims to be node a"))
        #expect(actions.contains { if case .refuse(let frame?, _) = $0 { frame.kind == .errorReply } else { false } })
    }

    @Test("a client may show a client certificate or a node's")
    func clients() throws {
        let tool = PeerIdentity(role: .client, nodeID: NodeID(unchecked: "cli"), incarnation: 0, listenAddress: "")
        for certificate in [PlexIdentity.client("script", role: .caller), .node("n1")] {
            let actions = try Self.acceptorAnswer(claimed: tool, certificate: certificate)
            #expect(actions.compactMap(\.refusal).isEmpty, "\(certificate)")
        }
    }

    @Test("the dialler refuses an acceptor whose certificate names another node than its challenge")
    func acceptorMismatch() throws {
        var client = Self.machine(.initiator, Self.a)
        var server = Self.machine(.acceptor, Self.b)
        client.certify(.node("mallory"))
        server.certify(.node("a"))
        let challenge = try HandshakeBindingTests.sent(server.receive(try HandshakeBindingTests.sent(client.start())))
        let refusal = try #require(client.receive(challenge).compactMap(\.refusal).first)
        #expect(refusal.message.contains("claims to be node b, but its certificate is for node mallory"))
    }
}
