/// Settings of a node's HTTP gateway (``Gateway``).
///
/// The gateway listens on loopback by default. Listening on any other address requires a bearer token, so a
/// node never exposes its actors to the network without one.
public struct GatewayConfiguration: Sendable, Hashable {
    /// The address to listen on; `127.0.0.1` by default.
    public var host: String
    /// The port; 0 picks a free one (the bound port is reported once the gateway runs).
    public var port: Int
    /// The token every request must carry as `Authorization: Bearer TOKEN`; required unless ``host`` is a
    /// loopback address. Never logged.
    public var bearerToken: String?
    /// Whether `/metrics` answers without the token (for a Prometheus scraper on a trusted network).
    public var metricsWithoutToken: Bool
    /// The largest request body accepted; a larger one is answered 413.
    public var maximumBodySize: Int
    /// How long a call waits when the request names no timeout.
    public var defaultTimeout: Duration
    /// The longest timeout a request may ask for (`timeout_ms` or `Plex-Timeout-Ms`).
    public var maximumTimeout: Duration
    /// How long a connection may stay silent before the gateway closes it (a stalled client must not hold a
    /// connection, or a graceful stop, for ever).
    public var idleTimeout: Duration = .seconds(60)
    /// How many connections each listener holds open at once; beyond that it stops accepting until one closes
    /// (new ones wait in the system's backlog), so a flood of idle connections cannot use up the process's files.
    public var maximumConnections: Int = 1_024
    /// A second listener speaking HTTP/2 without TLS ("h2c", prior knowledge: the client starts with HTTP/2's
    /// preface, as `curl --http2-prior-knowledge`, `h2load` and gRPC-style clients do); `nil`: none. It serves
    /// the same routes under the same token.
    public var plaintextHTTP2: GatewayListener?
    /// TLS for the main listener, which then speaks HTTP/1.1 and HTTP/2, chosen per connection by ALPN;
    /// `nil`: plain HTTP/1.1.
    public var tls: GatewayTLSFiles?

    /// Creates gateway settings.
    public init(
        host: String = "127.0.0.1", port: Int = 0, bearerToken: String? = nil, metricsWithoutToken: Bool = false,
        maximumBodySize: Int = 1 << 20, defaultTimeout: Duration = .seconds(5), maximumTimeout: Duration = .seconds(300)
    ) {
        self.host = host
        self.port = port
        self.bearerToken = bearerToken
        self.metricsWithoutToken = metricsWithoutToken
        self.maximumBodySize = maximumBodySize
        self.defaultTimeout = defaultTimeout
        self.maximumTimeout = maximumTimeout
    }

    /// Loads the TLS files, if any, and checks that they make a TLS server (the key belongs to the certificate),
    /// so that a node can refuse bad files before it joins its cluster.
    /// - Throws: ``GatewayConfigurationError`` naming the file at fault.
    public func checkTLSFiles() throws(GatewayConfigurationError) {
        if let tls { _ = try Gateway.tlsContext(tls) }
    }

    /// Whether ``host`` (and the h2c listener's host) reach this machine only.
    public var isLoopback: Bool {
        GatewayListener(host: host, port: port).isLoopback && (plaintextHTTP2?.isLoopback ?? true)
    }

    /// Checks the settings.
    /// - Throws: ``GatewayConfigurationError`` when the gateway would listen beyond loopback without a token,
    ///   or a limit is out of range.
    public func validate() throws(GatewayConfigurationError) {
        guard (0...65_535).contains(port) else {
            throw GatewayConfigurationError("http port \(port) is not 0...65535")
        }
        if let plaintextHTTP2, !(0...65_535).contains(plaintextHTTP2.port) {
            throw GatewayConfigurationError("http2 port \(plaintextHTTP2.port) is not 0...65535")
        }
        if let tls, tls.certificateChainFile.isEmpty || tls.privateKeyFile.isEmpty {
            throw GatewayConfigurationError("HTTP TLS needs both a certificate file and a private key file")
        }
        guard maximumConnections > 0 else {
            throw GatewayConfigurationError("the most connections per listener must be positive")
        }
        guard maximumBodySize > 0 else { throw GatewayConfigurationError("the largest request body must be positive") }
        guard defaultTimeout > .zero, maximumTimeout >= defaultTimeout else {
            throw GatewayConfigurationError("the default timeout must be positive and at most the longest timeout")
        }
        if let bearerToken, bearerToken.isEmpty || bearerToken.contains(where: \.isWhitespace) {
            throw GatewayConfigurationError("the HTTP bearer token must be non-empty and without whitespace")
        }
        if !isLoopback && bearerToken == nil {
            let beyond = GatewayListener(host: host, port: port).isLoopback ? plaintextHTTP2?.host ?? host : host
            throw GatewayConfigurationError(
                "the HTTP gateway listens on \(beyond), beyond loopback: it needs a bearer token "
                    + "(http_token_file or PLEX_HTTP_TOKEN), or listen on 127.0.0.1")
        }
    }
}

/// An address a gateway listens on.
public struct GatewayListener: Sendable, Hashable {
    /// The address to listen on.
    public var host: String
    /// The port; 0 picks a free one.
    public var port: Int

    /// Creates a listener address.
    public init(host: String = "127.0.0.1", port: Int = 0) {
        self.host = host
        self.port = port
    }

    /// Whether ``host`` reaches this machine only: `localhost`, `::1`, or an IPv4 address in 127.0.0.0/8 (a
    /// name that merely starts with "127." is not: it could resolve anywhere).
    public var isLoopback: Bool {
        if host == "localhost" || host == "::1" || host == "[::1]" { return true }
        let parts = host.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts.allSatisfy({ UInt8($0) != nil && !$0.isEmpty }) else { return false }
        return parts[0] == "127"
    }
}

/// The PEM files of a gateway's TLS identity.
public struct GatewayTLSFiles: Sendable, Hashable {
    /// The certificate, then any intermediates, in PEM.
    public var certificateChainFile: String
    /// The certificate's private key in PEM. Never logged.
    public var privateKeyFile: String

    /// Names the two files.
    public init(certificateChainFile: String, privateKeyFile: String) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
    }
}

/// Gateway settings that cannot work; the message says which and why.
public struct GatewayConfigurationError: Error, Sendable, Hashable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
