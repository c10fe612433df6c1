internal import Logging

/// Logs why connections were refused or cut before their handshake finished, at most once per reason per
/// interval, so that a stranger opening thousands of connections (silent ones, garbage, plain text at a TLS
/// node, a wrong secret) cannot flood the node's log and its disk. The line that is logged says how many of
/// the same reason went unlogged since the last one (`refused.unlogged`).
///
/// Each reason has its own allowance: a flood of one kind does not hide the first line of another. Problems
/// on an established connection (a member's bad frame) are not refusals and are logged every time.
final class RefusalLog: Sendable {
    /// Why a connection was refused.
    enum Reason: Int, CaseIterable {  // raw values are indexes into `allowances`: keep them implicit
        /// More connections are open than ``TCPTransport/Configuration/maximumConnections``.
        case connectionLimit
        /// The handshake proof, cluster, node id or credential was wrong.
        case handshakeRefused
        /// The handshake did not finish before its deadline.
        case handshakeTimedOut
        /// A frame that does not parse, or one too big before the handshake.
        case badFrame
        /// A plain-text peer at a TLS node, or a TLS peer at a plain one.
        case wrongSecurity
        /// The TLS handshake failed, or the peer's certificate was refused.
        case tlsHandshake
        /// Bytes that are not the peer's TLS records.
        case tlsError
    }

    private let logger: Logger
    private let allowances: [RateLimitedLog]

    /// - Parameter interval: How often one reason is logged at most; `.zero` logs every refusal (the node's own
    ///   dials, and the in-memory transport, which strangers cannot reach).
    init(logger: Logger, interval: Duration) {
        self.logger = logger
        self.allowances = Reason.allCases.map { _ in RateLimitedLog(interval: interval) }
    }

    /// Logs a refusal for `reason` unless one was logged less than the interval ago.
    func log(
        _ level: Logger.Level, _ reason: Reason, _ message: @autoclosure () -> Logger.Message,
        metadata: @autoclosure () -> Logger.Metadata, now: ContinuousClock.Instant = .now
    ) {
        guard let unlogged = allowances[reason.rawValue].due(now: now) else { return }
        var metadata = metadata()
        if unlogged > 0 { metadata["refused.unlogged"] = "\(unlogged)" }
        logger.log(level: level, message(), metadata: metadata)
    }
}
