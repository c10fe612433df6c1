internal import Crypto
internal import PlexCore

/// The HMAC each side of a handshake sends to prove it knows the cluster secret, bound to one connection.
///
/// A proof covers the cluster name, both sides' identities (role, node id, incarnation, listen address) and
/// nonces, in the connection's direction (initiator first), and which side made it. So a proof made on
/// another connection (another nonce, another claimed identity, the other direction) proves nothing here,
/// and a relay that rewrites an identity in transit breaks both proofs. The byte layout is in
/// `proto/README.md` ("Handshake proof"); `proto/fixtures/handshake-*.bin` pin it.
struct HandshakeProof {
    /// One side's part of the transcript.
    struct Party {
        var role: PeerRole
        var nodeID: String
        var incarnation: Incarnation
        var listenAddress: String
        var nonce: [UInt8]

        init(_ identity: PeerIdentity, nonce: [UInt8]) {
            self.role = identity.role
            self.nodeID = identity.nodeID.rawValue
            self.incarnation = identity.incarnation
            self.listenAddress = identity.listenAddress
            self.nonce = nonce
        }
    }

    static let initiatorLabel = "plex-handshake-v2 initiator proof"
    static let acceptorLabel = "plex-handshake-v2 acceptor proof"

    /// The bytes the HMAC covers. A `str` is a u32 big-endian byte count then the bytes; integers are big-endian.
    ///
    /// ```
    /// str label | str cluster name
    /// u8 initiator role | str initiator node id | u64 initiator incarnation | str initiator listen address
    /// str initiator nonce
    /// u8 acceptor role  | str acceptor node id  | u64 acceptor incarnation  | str acceptor listen address
    /// str acceptor nonce
    /// ```
    /// Roles are numbered as `PeerRole` in handshake.proto (node 0, client 1); the acceptor is always a node.
    static func transcript(
        madeBy side: HandshakeStateMachine.Side, clusterName: String, initiator: Party, acceptor: Party
    )
        -> [UInt8]
    {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(256)
        func integer(_ value: some FixedWidthInteger) {
            withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
        }
        func string(_ data: [UInt8]) {
            integer(UInt32(data.count))
            bytes.append(contentsOf: data)
        }
        func member(_ party: Party, role: PeerRole) {
            integer(UInt8(role == .node ? 0 : 1))
            string(Array(party.nodeID.utf8))
            integer(party.incarnation)
            string(Array(party.listenAddress.utf8))
            string(party.nonce)
        }
        string(Array((side == .initiator ? initiatorLabel : acceptorLabel).utf8))
        string(Array(clusterName.utf8))
        member(initiator, role: initiator.role)
        member(acceptor, role: .node)
        return bytes
    }

    /// HMAC-SHA256 of the transcript under the cluster secret.
    static func make(
        secret: [UInt8], madeBy side: HandshakeStateMachine.Side, clusterName: String, initiator: Party,
        acceptor: Party
    ) -> [UInt8] {
        let message = transcript(madeBy: side, clusterName: clusterName, initiator: initiator, acceptor: acceptor)
        return Array(HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: secret)))
    }

    /// Whether `candidate` is the proof `side` should have made; compares in constant time.
    static func verify(
        _ candidate: some Collection<UInt8>, secret: [UInt8], madeBy side: HandshakeStateMachine.Side,
        clusterName: String, initiator: Party, acceptor: Party
    ) -> Bool {
        let expected = make(
            secret: secret, madeBy: side, clusterName: clusterName, initiator: initiator, acceptor: acceptor)
        let candidate = Array(candidate)
        guard candidate.count == expected.count else { return false }
        var difference: UInt8 = 0
        for (a, b) in zip(candidate, expected) { difference |= a ^ b }
        return difference == 0
    }
}
