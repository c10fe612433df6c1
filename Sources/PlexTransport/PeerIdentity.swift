public import PlexCertificates
public import PlexCore

/// What the connecting side of a connection is.
public enum PeerRole: Sendable, Hashable {
    /// A cluster member.
    case node
    /// A tool that only calls (the CLI, a benchmark driver).
    case client
}

/// Who is at the other end of an established connection (or at this end).
public struct PeerIdentity: Sendable, Hashable, CustomStringConvertible {
    /// Node or client.
    public var role: PeerRole
    /// The member's id; for a client, an id the client chose for logs.
    public var nodeID: NodeID
    /// The member's incarnation.
    public var incarnation: Incarnation
    /// Where the member accepts connections (`host:port`); empty for a client.
    public var listenAddress: String
    /// Who the peer's TLS certificate, signed by the cluster's CA, says it is; `nil` without TLS. For a node
    /// it names ``nodeID`` (the handshake refuses a peer whose certificate names another node); for a client
    /// it carries the client's name and role.
    public var certified: PlexIdentity?
    /// Which secret the peer proved in the handshake: a client that proved only the caller secret is a caller.
    public var credential: HandshakeConfiguration.Credential = .cluster

    /// Whether the peer may only call actors and read status (not stop or remove nodes): a client whose
    /// certificate gives it the `caller` role, or that proved the caller secret.
    public var isCallerOnly: Bool {
        if case .client(_, role: .caller)? = certified { return true }
        return credential == .caller
    }

    /// Creates an identity.
    public init(
        role: PeerRole, nodeID: NodeID, incarnation: Incarnation, listenAddress: String,
        certified: PlexIdentity? = nil
    ) {
        self.role = role
        self.nodeID = nodeID
        self.incarnation = incarnation
        self.listenAddress = listenAddress
        self.certified = certified
    }

    public var description: String {
        let base = "\(nodeID)#\(incarnation)@\(listenAddress)"
        return certified.map { "\(base) [\($0)]" } ?? base
    }
}

/// What both sides of a handshake must agree on.
public struct HandshakeConfiguration: Sendable {
    /// The cluster's name; a peer with another name is refused.
    public var clusterName: String
    /// The shared cluster secret; proved by HMAC, never sent.
    public var secret: [UInt8]
    /// How long a handshake may take before the connection is closed. Default: 5 seconds.
    public var timeout: Duration
    /// Which secret ``secret`` is: the cluster's, or (for a client) the caller secret. Default: the cluster's.
    public var credential: Credential
    /// On a node: the caller secret, which a client may prove instead of the cluster secret to get the caller
    /// role only (call actors, read status; not stop or remove nodes). `nil`: such clients are refused.
    public var callerSecret: [UInt8]?

    /// Which secret a side proves.
    public enum Credential: String, Sendable, Hashable {
        /// The cluster secret: every right.
        case cluster
        /// The caller secret: calls and status only.
        case caller
        /// Over TLS, a client's certificate alone: its role decides what it may do. No secret is proved.
        case certificate
    }

    /// The HMAC key of a handshake whose client shows only its certificate: public, so the proofs bind the
    /// transcript (who, which connection, which direction) and prove nothing else; TLS authenticated the client.
    static let certificateKey = Array("plex-handshake certificate credential".utf8)

    /// Creates a handshake configuration.
    public init(
        clusterName: String, secret: [UInt8], timeout: Duration = .seconds(5), credential: Credential = .cluster,
        callerSecret: [UInt8]? = nil
    ) {
        self.clusterName = clusterName
        self.secret = secret
        self.timeout = timeout
        self.credential = credential
        self.callerSecret = callerSecret
    }
}
