public import Hummingbird
internal import HummingbirdCore
internal import NIOCore
internal import NIOHTTP2
internal import NIOSSL
internal import PlexCore

extension Gateway {
    /// The main listener's server, to run (it is a swift-service-lifecycle `Service`): HTTP/1.1, or with
    /// ``GatewayConfiguration/tls`` HTTP/1.1 and HTTP/2 over TLS, chosen per connection by ALPN.
    /// - Parameter onRunning: Called with the bound port once the server listens.
    /// - Throws: ``GatewayConfigurationError`` when the TLS files do not load.
    public func application(onRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        throws(GatewayConfigurationError) -> some ApplicationProtocol
    {
        let gateway = self
        let idleTimeout = configuration.idleTimeout
        let server: HTTPServerBuilder
        if let files = configuration.tls {
            let context = try Self.tlsContext(files)
            let timeout = silenceTimeout
            server = HTTPServerBuilder { responder in
                ConnectionLoop(
                    inner: SilentConnectionGuard(
                        inner: TLSGatewayChannel(
                            context: context,
                            http1: PlainHTTP1Channel(
                                responder: responder, gateway: gateway, idleTimeout: idleTimeout, secure: true),
                            http2: PlainHTTP2Channel(responder: responder, gateway: gateway, idleTimeout: idleTimeout)),
                        timeout: timeout))
            }
        } else {
            server = HTTPServerBuilder { responder in
                ConnectionLoop(
                    inner: PlainHTTP1Channel(
                        responder: responder, gateway: gateway, idleTimeout: idleTimeout, secure: false))
            }
        }
        return application(
            server, listener: GatewayListener(host: configuration.host, port: configuration.port),
            onRunning: onRunning)
    }

    /// The h2c listener's server (HTTP/2 without TLS, prior knowledge), or `nil` without
    /// ``GatewayConfiguration/plaintextHTTP2``.
    /// - Parameter onRunning: Called with the bound port once the server listens.
    public func plaintextHTTP2Application(onRunning: @escaping @Sendable (Int) async -> Void = { _ in })
        -> (some ApplicationProtocol)?
    {
        configuration.plaintextHTTP2.map { listener in
            let gateway = self
            let idleTimeout = configuration.idleTimeout
            let timeout = silenceTimeout
            let server = HTTPServerBuilder { responder in
                ConnectionLoop(
                    inner: SilentConnectionGuard(
                        inner: PlainHTTP2Channel(responder: responder, gateway: gateway, idleTimeout: idleTimeout),
                        timeout: timeout))
            }
            return application(server, listener: listener, onRunning: onRunning)
        }
    }

    /// The idle timeout as NIO counts time: how long an HTTP/1.1 connection may wait between requests, and an
    /// HTTP/2 or TLS connection may send nothing (``SilentConnectionGuard``).
    private var silenceTimeout: TimeAmount {
        .nanoseconds(Int64(clamping: configuration.idleTimeout.clampedNanoseconds))
    }

    private func application(
        _ server: HTTPServerBuilder, listener: GatewayListener, onRunning: @escaping @Sendable (Int) async -> Void
    ) -> Application<RouterResponder<GatewayRequestContext>> {
        Application(
            router: router(), server: server,
            configuration: ApplicationConfiguration(
                address: .hostname(listener.host, port: listener.port), serverName: nil,
                availableConnectionsDelegate: MaximumAvailableConnections(configuration.maximumConnections)),
            onServerRunning: { channel in await onRunning(channel.localAddress?.port ?? 0) },
            logger: logger)
    }

    /// The server's TLS context from the PEM files: TLS 1.2 or later, offering `h2` and `http/1.1` by ALPN. Making it
    /// is also the check that the key belongs to the certificate.
    static func tlsContext(_ files: GatewayTLSFiles) throws(GatewayConfigurationError) -> NIOSSLContext {
        let chain: [NIOSSLCertificate]
        do {
            chain = try NIOSSLCertificate.fromPEMFile(files.certificateChainFile)
        } catch {
            throw GatewayConfigurationError(
                "http_tls_cert_file: cannot read a PEM certificate from \(files.certificateChainFile): \(error)")
        }
        guard !chain.isEmpty else {
            throw GatewayConfigurationError("http_tls_cert_file: \(files.certificateChainFile) holds no certificate")
        }
        let key: NIOSSLPrivateKey
        do {
            key = try NIOSSLPrivateKey(file: files.privateKeyFile, format: .pem)
        } catch {
            throw GatewayConfigurationError(
                "http_tls_key_file: cannot read a PEM private key from \(files.privateKeyFile): \(error)")
        }
        var tls = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        tls.applicationProtocols = NIOHTTP2SupportedALPNProtocols
        do {
            return try NIOSSLContext(configuration: tls)
        } catch {
            throw GatewayConfigurationError(
                "http_tls_key_file: \(files.privateKeyFile) and http_tls_cert_file: \(files.certificateChainFile) do not "
                    + "make a TLS server (does the key belong to the certificate?): \(error)")
        }
    }
}
