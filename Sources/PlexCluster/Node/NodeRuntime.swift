internal import Logging
internal import NIOCore
internal import PlexCore
internal import PlexJournal
internal import PlexTransport
internal import PlexWire
internal import Synchronization
internal import Tracing

/// What every role of a node shares, handed to each when the node starts: the node's identity and settings,
/// its journal, transport and logger, the tasks it owns, and whether it still runs.
final class NodeRuntime: Sendable {
    let nodeID: NodeID
    let incarnation: Incarnation
    /// The address the node listens on (as bound).
    let address: PeerAddress
    let configuration: NodeConfiguration
    let logger: Logger
    let journal: Journal
    let transport: any Transport
    /// The node's loops (gossip, join, sweeps, idle deactivation, reminders, journal pruning).
    let loops = BackgroundTasks()
    /// Background work: reconnects, forwards, handoff rounds, reminder deliveries, evictions, admin commands.
    let tasks = BackgroundTasks()
    /// Actors' turns (mailbox drains): they run until the node stops, and are cancelled then.
    let turns = TurnTasks()
    private let runningFlag = Atomic<Bool>(true)
    /// The slowest and failed turns, for the dashboard.
    let callLog = CallLog()
    /// The node's spans; `nil` when nothing traces.
    let tracing: CallTracing?

    init(
        nodeID: NodeID, incarnation: Incarnation, address: PeerAddress, configuration: NodeConfiguration,
        logger: Logger, journal: Journal, transport: any Transport
    ) {
        self.nodeID = nodeID
        self.incarnation = incarnation
        self.address = address
        self.configuration = configuration
        self.logger = logger
        self.journal = journal
        self.transport = transport
        self.tracing = CallTracing(tracer: configuration.tracer, nodeID: nodeID)
    }

    /// Whether the node runs (it has not begun to stop).
    var isRunning: Bool { runningFlag.load(ordering: .relaxed) }

    /// Marks the node as stopping; `true` for the first caller only.
    func beginStopping() -> Bool { runningFlag.exchange(false, ordering: .relaxed) }

    /// Nanoseconds on the monotonic clock.
    @inline(__always)
    static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    /// The deadline of a call made with `timeout` (the node's default call timeout when `nil`).
    func deadline(after timeout: Duration?, now: UInt64 = NodeRuntime.now()) -> Deadline {
        Deadline.after(timeout ?? configuration.calls.defaultTimeout, now: now)
    }

    /// How far back (milliseconds) idempotency keys are kept.
    var retentionMilliseconds: Int64 {
        Int64(clamping: configuration.idempotencyRetention.clampedNanoseconds / 1_000_000)
    }

    /// Fails unless a frame with `body` fits in ``NodeConfiguration/maximumFrameSize``, which peers enforce on
    /// what they read: a frame over it would close the whole connection, so the one message fails instead.
    ///
    /// - Parameters:
    ///   - code: `invalidRequest` for a request this node was asked to send, `codecFailure` for a reply or a
    ///     transfer it produced.
    ///   - what: Names the frame for the message (evaluated only on failure).
    func requireFits(_ body: ByteBuffer, code: CallError.Code, _ what: @autoclosure () -> String) throws(CallError) {
        try requireFits(size: body.readableBytes, code: code, what())
    }

    /// ``requireFits(_:code:_:)`` for a call not encoded (a local one): the same limit wherever the actor lives.
    func requireFits(_ call: Wire.CallBody, code: CallError.Code, _ what: @autoclosure () -> String) throws(CallError) {
        try requireFits(size: call.encodedSize, code: code, what())
    }

    private func requireFits(size bodySize: Int, code: CallError.Code, _ what: @autoclosure () -> String)
        throws(CallError)
    {
        let size = Wire.headerSize + bodySize
        guard size <= configuration.maximumFrameSize else {
            throw CallError(
                code, "\(what()) takes \(size) bytes, over max_frame_size (\(configuration.maximumFrameSize))")
        }
    }

    /// Decodes a protobuf control-plane body; a malformed one is logged and closes that connection only.
    func decodeOrClose<Message>(
        _ frame: Wire.Frame, on connection: any Connection, _ decode: (Wire.Frame) throws -> Message
    ) -> Message? {
        do {
            return try decode(frame)
        } catch {
            logger.error(
                "closing connection after a malformed \(frame.kind) body",
                metadata: ["peer": "\(connection.peer)", "error": "\(error)"])
            connection.close()
            return nil
        }
    }
}
