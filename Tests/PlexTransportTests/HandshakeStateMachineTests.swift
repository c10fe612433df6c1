import NIOCore
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
