import ArgumentParser
import Foundation
import Logging
import Metrics
import PlexExamples
import PlexGateway
import PlexSpaces
import Prometheus
import ServiceLifecycle

struct NodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "node", abstract: "Run a node, or stop one gracefully.",
        subcommands: [RunNode.self, StopNode.self], defaultSubcommand: RunNode.self)
}

struct StopNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "Make a node leave gracefully: it hands its durable actors to their new owners, then exits.",
        discussion: "Waits for the node's answer (up to its drain timeout; see drain_timeout_ms).")

    @OptionGroup var client: ClientOptions

    func run() async throws {
        let client = try await exitingOnBadConfiguration { try await self.client.connect() }
        do {
            let (_, notMoved, outcome) = try await client.stopNode(timeout: .seconds(max(self.client.timeout, 120)))
            print(outcome)
            await client.close()
            if notMoved > 0 { throw ExitCode(1) }
        } catch let error as CallError {
            FileHandle.standardError.write(Data("plex: node stop failed: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }
}

struct RunNode: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a node that hosts the bundled example actors (counter, echo, ledger). The default.",
        discussion: """
            Prints one JSON line {"event":"ready",...} on stdout once it has joined. SIGTERM or SIGINT (or \
            plex node stop) leaves the cluster gracefully, handing durable actors off. Flags override the config \
            file.
            """)

    @Option(name: .long, help: "Config file (TOML subset; see cluster/local/).")
    var config: String?
    @Option(name: .long, help: "Node id (default: from the data directory, else generated).")
    var nodeId: String?
    @Option(name: .long, help: "Listen address host:port (port 0 picks one).")
    var listen: String?
    @Option(name: .long, help: "Address host:port other members dial to reach this node (default: the listen address).")
    var advertise: String?
    @Option(name: .long, help: "Seed address host:port; repeat for several.")
    var seed: [String] = []
    @Option(name: .long, help: "Data directory.")
    var dataDir: String?
    @Option(name: .long, help: "Cluster name.")
    var clusterName: String?
    @Option(name: .long, help: "File holding the cluster secret (or set PLEX_CLUSTER_SECRET).")
    var secretFile: String?
    @Option(
        name: .long,
        help: "File holding a caller secret: clients proving it may call actors and read status, not stop nodes.")
    var callerSecretFile: String?
    @OptionGroup(title: "Mutual TLS between nodes")
    var tls: TLSOptions
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String?
    @Option(name: .long, help: "Log format on stderr: text (default) or json (one object per line).")
    var logFormat: String?
    @Option(name: .long, help: "Failure detector: milliseconds of silence before a peer is unreachable.")
    var unreachableAfterMs: Int?
    @Option(name: .long, help: "Milliseconds between heartbeats.")
    var heartbeatMs: Int?
    @Option(name: .long, help: "HTTP gateway address host:port (default 127.0.0.1:0; port 0 picks one).")
    var httpListen: String?
    @Flag(name: .long, help: "Run without the HTTP gateway.")
    var noHttp = false
    @Option(name: .long, help: "Also serve HTTP/2 without TLS (h2c, prior knowledge) on host:port.")
    var http2Listen: String?
    @Option(name: .long, help: "PEM certificate chain: the gateway serves HTTPS, HTTP/1.1 and HTTP/2 by ALPN.")
    var httpTlsCertFile: String?
    @Option(name: .long, help: "PEM private key of --http-tls-cert-file.")
    var httpTlsKeyFile: String?
    @Option(
        name: .long,
        help: "File holding the HTTP gateway's bearer token (or set PLEX_HTTP_TOKEN); required beyond loopback.")
    var httpTokenFile: String?
    @Flag(name: .long, help: "Export spans to an OpenTelemetry collector over OTLP/HTTP (OTEL_* variables apply).")
    var otel = false
    @Option(
        name: .long, help: "The OpenTelemetry collector's base URL (implies --otel; default http://localhost:4318).")
    var otelEndpoint: String?
    @Option(name: .long, help: "SQLite files (writer threads) a new journal spreads actors over (default 1).")
    var journalShards: Int?
    @Flag(name: .long, help: "Keep journal entries that checkpoints cover, for plex journal inspect --state-at.")
    var keepHistory = false
    @Flag(
        name: .long,
        help: """
            Found a new cluster now if the data directory is new (otherwise only the first seed founds one, when \
            no other seed answers). Ignored when the data directory keeps a ring.
            """)
    var bootstrap = false

    func run() async throws {
        let settings = try await exitingOnBadConfiguration { try makeConfiguration() }
        let (configuration, level, json, http) = (settings.node, settings.level, settings.jsonLogs, settings.gateway)
        LoggingSystem.bootstrap { label in
            if json {
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "plex.node")
        // Every instrument of the process reports to one Prometheus registry, served by the gateway at /metrics.
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory.plex(registry: registry))
        // The gateway runs beside the node: on SIGTERM the group stops it first (in-flight requests finish), then
        // the node leaves; when the node stops on its own (plex node stop), the group stops the gateway.
        let startup = NodeStartup()
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let tracing = settings.tracing {
            // Before the node starts (it takes the process's tracer then); first in the group, so it stops last
            // and flushes the node's final spans.
            let exporter = try await exitingOnBadConfiguration {
                do {
                    return try NodeTracing.bootstrap(endpoint: tracing.endpoint, nodeID: configuration.nodeID?.rawValue)
                } catch {
                    throw ConfigurationFailure(message: "otel: \(error)")
                }
            }
            services.append(.init(service: exporter))
        }
        services += [
            .init(
                service: NodeService(
                    configuration: configuration, gateway: http, startup: startup, logger: logger),
                successTerminationBehavior: .gracefullyShutdownGroup)
        ]
        if let http {
            services.append(.init(service: GatewayService(configuration: http, metrics: registry, startup: startup)))
        }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await exitingOnBadConfiguration { try await group.run() }
    }

    /// What `plex node` runs with, from the flags over the config file.
    func makeConfiguration() throws -> NodeSettings {
        let file = try config.map(loadConfig) ?? ConfigFile()
        func string(_ key: String) -> String? {
            if case .string(let s)? = file.values[key] { return s }
            return nil
        }
        func integer(_ key: String) -> Int? {
            if case .integer(let n)? = file.values[key] { return n }
            return nil
        }
        guard let dataDir = dataDir ?? file.path("data_dir") else {
            throw ConfigurationFailure(message: "data_dir: required (in the config file or --data-dir)")
        }
        let listenText = listen ?? string("listen") ?? "127.0.0.1:0"
        guard let listenAddress = PeerAddress(parsing: listenText) else {
            throw ConfigurationFailure(message: "listen: '\(listenText)' is not host:port")
        }
        var advertisedAddress: PeerAddress?
        if let text = advertise ?? string("advertise") {
            guard let address = PeerAddress(parsing: text), address.port != 0 else {
                throw ConfigurationFailure(message: "advertise: '\(text)' is not host:port with a port")
            }
            advertisedAddress = address
        }
        var seedTexts = seed
        if seedTexts.isEmpty, case .strings(let list)? = file.values["seeds"] { seedTexts = list }
        let seeds = try seedTexts.map { text -> PeerAddress in
            guard let address = PeerAddress(parsing: text) else {
                throw ConfigurationFailure(message: "seeds: '\(text)' is not host:port")
            }
            return address
        }
        let nodeID: NodeID?
        if let text = nodeId ?? string("node_id") {
            guard NodeID.isValid(text) else {
                throw ConfigurationFailure(message: "node_id: '\(text)' is not valid (1-64 of [A-Za-z0-9._-])")
            }
            nodeID = try NodeID(text)
        } else {
            nodeID = nil
        }
        let levelText = logLevel ?? string("log_level") ?? "info"
        guard let level = Logger.Level(rawValue: levelText) else {
            throw ConfigurationFailure(message: "log_level: '\(levelText)' is not a log level")
        }
        let secret = try readSecret(file: secretFile ?? file.path("secret_file"))
        var configuration = NodeConfiguration(
            nodeID: nodeID, listenAddress: listenAddress, seeds: seeds, dataDirectory: dataDir,
            clusterName: clusterName ?? string("cluster_name") ?? "plex", secret: secret)
        if let ms = integer("idle_timeout_ms") { configuration.activation.idleTimeout = .milliseconds(ms) }
        if let n = integer("max_activations") { configuration.activation.maximumActivations = n }
        if let n = integer("mailbox_limit") { configuration.activation.maximumMailboxDepth = n }
        if let ms = heartbeatMs ?? integer("heartbeat_ms") {
            configuration.membership.heartbeatInterval = .milliseconds(ms)
        }
        if let ms = unreachableAfterMs ?? integer("unreachable_after_ms") {
            configuration.membership.unreachableAfter = .milliseconds(ms)
        }
        if let n = integer("max_frame_size") { configuration.maximumFrameSize = n }
        if let n = integer("max_in_flight_per_peer") { configuration.calls.maximumInFlightPerPeer = n }
        if let n = integer("max_connections") { configuration.maximumConnections = n }
        if let ms = integer("handshake_timeout_ms") { configuration.handshakeTimeout = .milliseconds(ms) }
        if case .boolean(let keep)? = file.values["keep_history"] { configuration.journal.keepHistory = keep }
        if keepHistory { configuration.journal.keepHistory = true }
        if let n = journalShards ?? integer("journal_shards") {
            guard (1...64).contains(n) else { throw ConfigurationFailure(message: "journal_shards: must be 1...64") }
            configuration.journal.shards = n
        }
        if let n = integer("journal_unfiled_bytes") {
            guard n >= 0 else { throw ConfigurationFailure(message: "journal_unfiled_bytes: must be 0 or more") }
            configuration.journal.unfiledBytes = n
        }
        configuration.advertisedAddress = advertisedAddress
        if case .boolean(let found)? = file.values["bootstrap"] { configuration.bootstrap = found }
        if bootstrap { configuration.bootstrap = true }
        if let ms = integer("join_timeout_ms") { configuration.membership.joinTimeout = .milliseconds(ms) }
        if let ms = integer("drain_timeout_ms") { configuration.membership.drainTimeout = .milliseconds(ms) }
        if let hours = integer("idempotency_retention_hours") {
            configuration.idempotencyRetention = .seconds(hours * 3600)
        }
        configuration.tls = try tls.load(file)
        if let path = callerSecretFile ?? file.path("caller_secret_file") {
            guard let data = FileManager.default.contents(atPath: path) else {
                throw ConfigurationFailure(message: "caller_secret_file: cannot read '\(path)'")
            }
            var text = String(decoding: data, as: UTF8.self)
            while text.hasSuffix("\n") || text.hasSuffix("\r") { text.removeLast() }
            configuration.callerSecret = Array(text.utf8)
        }
        do {
            try configuration.validate()
        } catch let error as NodeError {
            throw ConfigurationFailure(message: error.message)
        }
        let format = logFormat ?? string("log_format") ?? "text"
        guard format == "text" || format == "json" else {
            throw ConfigurationFailure(message: "log_format: '\(format)' is not text or json")
        }
        var tracing: NodeSettings.Tracing?
        let endpoint = otelEndpoint ?? string("otel_endpoint")
        var enabled = otel || endpoint != nil
        if case .boolean(true)? = file.values["otel"] { enabled = true }
        if enabled { tracing = NodeSettings.Tracing(endpoint: endpoint) }
        return NodeSettings(
            node: configuration, level: level, jsonLogs: format == "json", gateway: try gatewayConfiguration(file),
            tracing: tracing)
    }

    /// The HTTP gateway's settings, or `nil` with `--no-http` (or `http = false`).
    func gatewayConfiguration(_ file: ConfigFile) throws -> GatewayConfiguration? {
        if noHttp {
            guard http2Listen == nil, httpListen == nil, httpTlsCertFile == nil, httpTlsKeyFile == nil else {
                throw ConfigurationFailure(
                    message:
                        "--no-http turns the gateway off: --http-listen, --http2-listen and the TLS files do not apply")
            }
            return nil
        }
        if case .boolean(false)? = file.values["http"] { return nil }
        var text = httpListen ?? "127.0.0.1:0"
        if httpListen == nil, case .string(let value)? = file.values["http_listen"] { text = value }
        guard let address = PeerAddress(parsing: text) else {
            throw ConfigurationFailure(message: "http_listen: '\(text)' is not host:port")
        }
        var gateway = GatewayConfiguration(host: address.host, port: Int(address.port))
        var http2 = http2Listen
        if http2 == nil, case .string(let value)? = file.values["http2_listen"] { http2 = value }
        if let http2 {
            guard let address = PeerAddress(parsing: http2) else {
                throw ConfigurationFailure(message: "http2_listen: '\(http2)' is not host:port")
            }
            gateway.plaintextHTTP2 = GatewayListener(host: address.host, port: Int(address.port))
        }
        switch (httpTlsCertFile ?? file.path("http_tls_cert_file"), httpTlsKeyFile ?? file.path("http_tls_key_file")) {
        case (nil, nil): break
        case (let certificate?, let key?):
            gateway.tls = GatewayTLSFiles(certificateChainFile: certificate, privateKeyFile: key)
        default:
            throw ConfigurationFailure(message: "http_tls_cert_file and http_tls_key_file go together: name both")
        }
        gateway.bearerToken = try readHTTPToken(file: httpTokenFile ?? file.path("http_token_file"))
        if case .integer(let bytes)? = file.values["http_max_body_bytes"] { gateway.maximumBodySize = bytes }
        if case .boolean(let open)? = file.values["http_metrics_open"] { gateway.metricsWithoutToken = open }
        if case .integer(let count)? = file.values["http_max_connections"] { gateway.maximumConnections = count }
        do {
            try gateway.validate()
            try gateway.checkTLSFiles()  // before the node joins: bad files must not cost a membership change
        } catch {
            throw ConfigurationFailure(message: error.message)
        }
        return gateway
    }
}

/// What `plex node` runs with.
struct NodeSettings {
    /// The collector spans go to.
    struct Tracing {
        /// The collector's base URL; `nil`: the `OTEL_*` variables' (or OTLP's default).
        var endpoint: String?
    }

    var node: NodeConfiguration
    var level: Logger.Level
    var jsonLogs: Bool
    /// `nil` with `--no-http`.
    var gateway: GatewayConfiguration?
    /// `nil` unless `--otel` (or `otel = true`, or an `otel_endpoint`).
    var tracing: Tracing?
}
