internal import Logging
internal import PlexCertificates
internal import PlexCore
internal import PlexWire
internal import Synchronization

/// Where a ``FrameSession`` writes: a socket or an in-memory pipe.
protocol FrameSink: Sendable {
    /// Writes frames; the sink batches them into as few syscalls as it can.
    func write(_ frame: Wire.Frame)
    /// The executor of the thread that reads this channel, if any.
    var taskExecutor: (any TaskExecutor)? { get }
    /// Closes the underlying channel.
    func close()
}

/// One connection's protocol logic, shared by every transport: runs the handshake, then hands frames to
/// the delegate. I/O lives in the ``FrameSink``.
final class FrameSession: Connection {
    private enum Phase {
        case handshaking(HandshakeStateMachine)
        case established(PeerIdentity)
        case closed
    }

    let connectionID: UInt64
    let isOutbound: Bool
    let maximumFrameSize: Int
    private let sink: any FrameSink
    private let delegate: any ConnectionDelegate
    private let logger: Logger
    private let phase: Mutex<Phase>
    private let onEstablished: Mutex<(@Sendable (Result<any Connection, TransportError>) -> Void)?>
    /// The peer's address, for logs.
    let remote: @Sendable () -> String
    /// Where refusals before the handshake is done are logged (at most once per reason per interval, for
    /// connections others open).
    let refusals: RefusalLog

    private static let nextID = Atomic<UInt64>(1)

    init(
        side: HandshakeStateMachine.Side, configuration: HandshakeConfiguration, local: PeerIdentity,
        sink: any FrameSink, delegate: any ConnectionDelegate, logger: Logger,
        maximumFrameSize: Int = Wire.defaultMaximumFrameSize, requiresCertificate: Bool = false,
        remote: @escaping @Sendable () -> String = { "unknown" }, refusals: RefusalLog? = nil,
        onEstablished: (@Sendable (Result<any Connection, TransportError>) -> Void)? = nil
    ) {
        self.refusals = refusals ?? RefusalLog(logger: logger, interval: .zero)
        self.connectionID = Self.nextID.add(1, ordering: .relaxed).oldValue
        self.isOutbound = side == .initiator
        self.maximumFrameSize = maximumFrameSize
        self.sink = sink
        self.delegate = delegate
        self.logger = logger
        self.phase = Mutex(
            .handshaking(
                HandshakeStateMachine(
                    side: side, configuration: configuration, local: local, requiresCertificate: requiresCertificate)))
        self.onEstablished = Mutex(onEstablished)
        self.remote = remote
    }

    /// Sets the callback that hears once whether the handshake succeeded.
    func setOnEstablished(_ callback: @escaping @Sendable (Result<any Connection, TransportError>) -> Void) {
        onEstablished.withLock { $0 = callback }
    }

    /// The peer proved in the handshake, published once; kept after the session closes. Read on every
    /// frame, so it is a lock-free load.
    private let establishedPeer = AtomicLazyReference<PeerBox>()

    private final class PeerBox: Sendable {
        let identity: PeerIdentity
        init(_ identity: PeerIdentity) { self.identity = identity }
    }

    private static let unknownPeer = PeerIdentity(
        role: .client, nodeID: .init(unchecked: "unknown"), incarnation: 0, listenAddress: "")

    var peer: PeerIdentity {
        establishedPeer.load()?.identity ?? Self.unknownPeer
    }

    /// Whether the handshake has succeeded (the session may have closed since). A lock-free load.
    var isEstablished: Bool { establishedPeer.load() != nil }

    /// Set once the session has closed; read by ``checkedSend(_:)`` without a lock.
    private let isClosed = Atomic<Bool>(false)

    /// Whether the handshake is still running (not established, not closed).
    var isHandshaking: Bool {
        phase.withLock { if case .handshaking = $0 { return true } else { return false } }
    }

    /// Starts the handshake (initiator side).
    func start() {
        let actions = phase.withLock { phase -> [HandshakeStateMachine.Action] in
            guard case .handshaking(var machine) = phase else { return [] }
            let actions = machine.start()
            phase = .handshaking(machine)
            return actions
        }
        perform(actions)
    }

    /// Records who the peer's verified TLS certificate speaks for (before its first handshake frame).
    func certify(_ identity: PlexIdentity) {
        phase.withLock { phase in
            guard case .handshaking(var machine) = phase else { return }
            machine.certify(identity)
            phase = .handshaking(machine)
        }
    }

    /// Refuses the peer before the handshake has finished: tells it `reason` in an error frame, then closes.
    func refuse(_ reason: String) {
        let actions = phase.withLock { phase -> [HandshakeStateMachine.Action] in
            guard case .handshaking(var machine) = phase else { return [] }
            let actions = machine.refuse(reason)
            phase = .handshaking(machine)
            return actions
        }
        perform(actions)
    }

    /// Handles a frame from the peer.
    func receive(_ frame: Wire.Frame) {
        enum Next {
            case deliver
            case handshake([HandshakeStateMachine.Action])
            case drop
        }
        let next = phase.withLock { phase -> Next in
            switch phase {
            case .established: return .deliver
            case .closed: return .drop
            case .handshaking(var machine):
                let actions = machine.receive(frame)
                phase = .handshaking(machine)
                return .handshake(actions)
            }
        }
        switch next {
        case .deliver:
            if frame.kind == .handshake || frame.kind == .handshakeAck {
                fail(TransportError(.protocolViolation, "\(frame.kind) frame after the handshake"))
            } else {
                delegate.received(frame, on: self)
            }
        case .handshake(let actions): perform(actions)
        case .drop: break
        }
    }

    private func perform(_ actions: [HandshakeStateMachine.Action]) {
        for action in actions {
            switch action {
            case .send(let frame):
                sink.write(frame)
            case .established(let peer):
                _ = establishedPeer.storeIfNil(PeerBox(peer))
                phase.withLock { $0 = .established(peer) }
                logger.debug("connection established", metadata: ["peer": "\(peer)"])
                delegate.connectionEstablished(self)
                onEstablished.withLock { $0.take() }?(.success(self))
            case .refuse(let frame, let error):
                if let frame { sink.write(frame) }
                refusals.log(
                    .warning, .handshakeRefused, "handshake refused",
                    metadata: ["error": "\(error)", "remote": "\(remote())"])
                fail(error)
            }
        }
    }

    func send(_ frame: Wire.Frame) {
        guard frame.wireSize - Wire.lengthPrefixSize <= maximumFrameSize else {
            logger.error(
                "dropping an outbound frame over the maximum frame size",
                metadata: [
                    "frame.kind": "\(frame.kind)", "frame.bytes": "\(frame.wireSize - Wire.lengthPrefixSize)",
                    "frame.maximum": "\(maximumFrameSize)", "peer": "\(peer)",
                ])
            return
        }
        sink.write(frame)
    }

    func checkedSend(_ frame: Wire.Frame) throws(TransportError) {
        let size = frame.wireSize - Wire.lengthPrefixSize
        guard size <= maximumFrameSize else {
            throw TransportError(
                .frameTooLarge,
                "\(frame.kind) frame of \(size) bytes exceeds the maximum frame size of \(maximumFrameSize) bytes")
        }
        guard !isClosed.load(ordering: .relaxed) else {
            throw TransportError(.connectionClosed, "the connection to \(peer) is closed")
        }
        sink.write(frame)
    }

    var taskExecutor: (any TaskExecutor)? { sink.taskExecutor }

    func close() {
        sink.close()
    }

    /// Closes the session because of `error` (a protocol violation or a refused handshake).
    func fail(_ error: TransportError) {
        onEstablished.withLock { $0.take() }?(.failure(error))
        sink.close()
        closed(error: error)
    }

    /// The underlying channel closed; tells the delegate once if the session was established.
    func closed(error: (any Error)?) {
        isClosed.store(true, ordering: .relaxed)
        let wasEstablished = phase.withLock { phase -> Bool in
            defer { phase = .closed }
            if case .established = phase { return true }
            return false
        }
        onEstablished.withLock { $0.take() }?(
            .failure(
                TransportError(
                    .connectionClosed, "connection closed during the handshake: \(error.map { "\($0)" } ?? "EOF")")))
        if wasEstablished { delegate.connectionClosed(self, error: error) }
    }
}
