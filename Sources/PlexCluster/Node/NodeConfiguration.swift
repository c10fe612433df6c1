public import PlexCore
public import PlexJournal
public import PlexTransport
public import PlexWire
public import Tracing

/// Everything a node needs to start. Only the CLI turns flags, files and environment into this.
public struct NodeConfiguration: Sendable {
    /// This node's id. `nil` reads it from the data directory, or makes and stores a new one there.
    public var nodeID: NodeID?
    /// Where the node's spans go (actor turns, remote hops, journal commits, workflow steps; see
    /// <doc:Tracing>). `nil`: the process's `InstrumentationSystem.tracer` if one was bootstrapped before the
    /// node started, else none, at no cost on the call path.
    public var tracer: (any Tracer)?
    /// Where the node accepts connections. Port 0 picks a free port. Default: `127.0.0.1:0`.
    public var listenAddress: PeerAddress
    /// The address other members dial to reach this node, when it is not ``listenAddress`` (the node sits
    /// behind a proxy or a NAT). `nil` advertises the address bound. Default: `nil`.
    public var advertisedAddress: PeerAddress?
    /// Addresses of members to join through.
    ///
    /// A node with a new data directory joins through them and never founds a cluster of its own, except
    /// the first seed (this node's own address first in the list, or an empty list), which founds one when no
    /// other seed answers within the join timeout. A node that kept its ring (see ``StoredRing``) does not
    /// need them: it reconnects to the members it knew.
    public var seeds: [PeerAddress]
    /// Founds a new cluster at once when the data directory is new (`--bootstrap`). Ignored when the data
    /// directory keeps a ring: a node belongs to the cluster it joined for good. Default: `false`.
    public var bootstrap: Bool
    /// Directory for the node id, incarnation and (later) the journal. Created if missing.
    public var dataDirectory: String
    /// The cluster's name; peers with another name are refused. Default: `"plex"`.
    public var clusterName: String
    /// The shared cluster secret (at least 16 bytes), proved in every handshake; never sent.
    public var secret: [UInt8]
    /// Activation limits.
    public var activation: ActivationConfiguration
    /// Failure detection and gossip timing.
    public var membership: MembershipConfiguration
    /// Call defaults and limits.
    public var calls: CallConfiguration
    /// The largest frame accepted from a peer, in bytes, header included (the 4-byte length prefix is not).
    /// A node sends nothing larger either: a request, reply or handoff that would not fit fails alone, with
    /// `CallError` `invalidRequest` (a request) or `codecFailure` (a reply or a transfer), and the
    /// connection stays up. Every member should use the same value. Default: 16 MiB.
    public var maximumFrameSize: Int
    /// The most accepted connections open at once, handshaking or established (peers, clients and strangers
    /// alike; connections this node dials are not counted). One past it is closed at once and logged, so a
    /// flood of connections costs bounded memory. Default: 1,024.
    public var maximumConnections: Int
    /// How long an accepted or dialled connection may take to prove the cluster secret before it is closed.
    /// Default: 5 seconds.
    public var handshakeTimeout: Duration
    /// The node's journal (`<dataDirectory>/journal.sqlite`), used by durable actor types.
    public var journal: JournalConfiguration
    /// How long a durable actor answers a retried idempotency key with the stored reply. Default: 24 hours.
    public var idempotencyRetention: Duration
    /// Mutual TLS on every cluster connection (TCP transport), or `nil` for plain TCP on a trusted network.
    /// The certificate must be issued for this node's id (``nodeID`` must then be set); every member of the
    /// cluster, and every client, must use TLS with the same CA. Nodes still prove the cluster secret inside
    /// TLS; a client with a client certificate proves none (its certificate's role decides). Default: `nil`.
    public var tls: TransportTLS?
    /// A second secret for clients that may only call actors and read status (not stop or remove nodes): a
    /// client proving it gets the caller role, the way a `caller` client certificate does over TLS. At least
    /// 16 bytes, and not the cluster secret. `nil`: clients must prove the cluster secret. Default: `nil`.
    public var callerSecret: [UInt8]?

    /// Creates a configuration.
    public init(
        nodeID: NodeID? = nil, listenAddress: PeerAddress = PeerAddress(host: "127.0.0.1", port: 0),
        seeds: [PeerAddress] = [], dataDirectory: String, clusterName: String = "plex", secret: [UInt8],
        activation: ActivationConfiguration = .init(), membership: MembershipConfiguration = .init(),
        calls: CallConfiguration = .init(), maximumFrameSize: Int = Wire.defaultMaximumFrameSize,
        journal: JournalConfiguration = .init(), idempotencyRetention: Duration = .seconds(24 * 3600),
        bootstrap: Bool = false, maximumConnections: Int = 1024, handshakeTimeout: Duration = .seconds(5)
    ) {
        self.maximumConnections = maximumConnections
        self.handshakeTimeout = handshakeTimeout
        self.bootstrap = bootstrap
        self.idempotencyRetention = idempotencyRetention
        self.nodeID = nodeID
        self.listenAddress = listenAddress
        self.seeds = seeds
        self.dataDirectory = dataDirectory
        self.clusterName = clusterName
        self.secret = secret
        self.activation = activation
        self.membership = membership
        self.calls = calls
        self.maximumFrameSize = maximumFrameSize
        self.journal = journal
    }

    /// Checks the values a node cannot run with.
    /// - Throws: ``NodeError`` with code `invalidConfiguration`, naming the field.
    public func validate() throws {
        guard secret.count >= 16 else {
            throw NodeError(.invalidConfiguration, "secret: must be at least 16 bytes (got \(secret.count))")
        }
        if let tls {
            // Checked before the data directory is touched: a node without a configured id would generate and
            // keep one that no certificate names.
            guard let nodeID, tls.identity == .node(nodeID.rawValue) else {
                throw NodeError(
                    .invalidConfiguration,
                    "tls_cert_file: the certificate is for \(tls.identity), but this node is "
                        + "\(nodeID.map { "\($0)" } ?? "without a node_id") (a TLS node needs node_id set to the id "
                        + "its certificate names; plex certs issue NODE-ID)")
            }
        }
        if let callerSecret {
            guard callerSecret.count >= 16 else {
                throw NodeError(
                    .invalidConfiguration, "caller_secret: must be at least 16 bytes (got \(callerSecret.count))")
            }
            guard callerSecret != secret else {
                throw NodeError(.invalidConfiguration, "caller_secret: must differ from the cluster secret")
            }
        }
        guard !clusterName.isEmpty else { throw NodeError(.invalidConfiguration, "cluster_name: must not be empty") }
        guard !dataDirectory.isEmpty else { throw NodeError(.invalidConfiguration, "data_dir: must not be empty") }
        guard activation.maximumActivations > 0 else {
            throw NodeError(.invalidConfiguration, "max_activations: must be positive")
        }
        guard activation.maximumMailboxDepth > 0 else {
            throw NodeError(
                .invalidConfiguration,
                "mailbox_limit: must be positive (got \(activation.maximumMailboxDepth)); there is no unlimited mailbox"
            )
        }
        guard membership.heartbeatInterval > .zero, membership.unreachableAfter > membership.heartbeatInterval else {
            throw NodeError(
                .invalidConfiguration, "unreachable_after: must be longer than heartbeat_interval")
        }
        guard membership.drainTimeout > .zero else {
            throw NodeError(.invalidConfiguration, "drain_timeout_ms: must be positive")
        }
        guard idempotencyRetention > .zero else {
            throw NodeError(.invalidConfiguration, "idempotency_retention_hours: must be positive")
        }
        guard maximumFrameSize >= 1024 else {
            throw NodeError(.invalidConfiguration, "max_frame_size: must be at least 1024 bytes")
        }
        guard maximumConnections > 0 else {
            throw NodeError(.invalidConfiguration, "max_connections: must be positive (got \(maximumConnections))")
        }
        guard handshakeTimeout > .zero else {
            throw NodeError(.invalidConfiguration, "handshake_timeout_ms: must be positive")
        }
    }
}

/// When activations end.
public struct ActivationConfiguration: Sendable {
    /// An activation that handled no message for this long is deactivated. Default: 5 minutes.
    public var idleTimeout: Duration
    /// Beyond this many activations the least recently used idle ones are deactivated. Default: 1,000,000.
    public var maximumActivations: Int
    /// How many messages (calls and tells, local and remote) may wait for one actor behind the one it is
    /// handling. A message past it fails at once with `CallError` `overloaded` and does not run, so an actor
    /// that falls behind holds a bounded amount of memory. Must be positive. Default: 10,000.
    public var maximumMailboxDepth: Int

    /// Creates an activation configuration.
    public init(
        idleTimeout: Duration = .seconds(300), maximumActivations: Int = 1_000_000, maximumMailboxDepth: Int = 10_000
    ) {
        self.idleTimeout = idleTimeout
        self.maximumActivations = maximumActivations
        self.maximumMailboxDepth = maximumMailboxDepth
    }
}

/// Gossip and failure detection timing.
public struct MembershipConfiguration: Sendable {
    /// How often a node gossips (and so heartbeats) to each peer. Default: 250 ms.
    public var heartbeatInterval: Duration
    /// A peer not heard from for this long is unreachable. Default: 2 seconds.
    public var unreachableAfter: Duration
    /// The longest wait between reconnection attempts to a peer. Default: 2 seconds.
    public var maximumReconnectBackoff: Duration
    /// How long `start` waits to hear from a seed before it returns (a node with a new data directory keeps
    /// trying after that), and how long the first seed waits for another seed before founding a cluster.
    /// Default: 3 seconds.
    public var joinTimeout: Duration
    /// How long a graceful leave may spend handing durable actors to their new owners. Default: 30 seconds.
    public var drainTimeout: Duration

    /// Creates a membership configuration.
    public init(
        heartbeatInterval: Duration = .milliseconds(250), unreachableAfter: Duration = .seconds(2),
        maximumReconnectBackoff: Duration = .seconds(2), joinTimeout: Duration = .seconds(3),
        drainTimeout: Duration = .seconds(30)
    ) {
        self.drainTimeout = drainTimeout
        self.heartbeatInterval = heartbeatInterval
        self.unreachableAfter = unreachableAfter
        self.maximumReconnectBackoff = maximumReconnectBackoff
        self.joinTimeout = joinTimeout
    }
}

/// Call defaults and limits.
public struct CallConfiguration: Sendable {
    /// The timeout of a call that names none. Default: 5 seconds.
    public var defaultTimeout: Duration
    /// Calls and tells in flight to one peer before callers wait for a slot (and fail with `overloaded` at
    /// their deadline). A call holds its slot until its reply; a tell until the owner has queued it for the
    /// actor (or refused it). Default: 4096.
    public var maximumInFlightPerPeer: Int
    /// The codec for actor payloads between nodes. Default: ``BinaryMessageCodec``.
    public var codec: any MessageCodec

    /// Creates a call configuration.
    public init(
        defaultTimeout: Duration = CallOptions.defaultTimeout, maximumInFlightPerPeer: Int = 4096,
        codec: any MessageCodec = BinaryMessageCodec()
    ) {
        self.defaultTimeout = defaultTimeout
        self.maximumInFlightPerPeer = maximumInFlightPerPeer
        self.codec = codec
    }
}
