public import Logging
internal import PlexCore
public import PlexWire
internal import Synchronization

/// An in-process network for tests: addresses, connections, and injected faults.
///
/// Every ``InMemoryTransport`` on one network can reach the others by address. Frames go through the same
/// ``FrameSession`` (handshake included) as over TCP, without bytes or sockets. Faults apply when a frame
/// is delivered: a partition between two addresses drops frames both ways, `dropRate` drops a random
/// share, `delay` holds every frame back.
public final class InMemoryNetwork: Sendable {
    struct State {
        var listeners: [PeerAddress: InMemoryTransport] = [:]
        var partitions: Set<[PeerAddress]> = []
        var dropRate = 0.0
        var delay: Duration = .zero
        var nextPort = 1
        var pipes: [ObjectIdentifier: InMemoryPipe] = [:]
        var holds: Set<Hold> = []
        var held: [Hold: [CheckedContinuation<Void, Never>]] = [:]
    }

    /// Frames of one kind in one direction between two addresses, held back by ``hold(_:from:to:)``.
    struct Hold: Hashable {
        let kind: Wire.FrameKind
        let from: PeerAddress
        let to: PeerAddress
    }

    let state = Mutex(State())

    /// Creates an empty network.
    public init() {}

    /// Drops every frame between `a` and `b` (both ways) until ``heal(_:_:)``.
    public func partition(_ a: PeerAddress, _ b: PeerAddress) {
        state.withLock { _ = $0.partitions.insert([a, b].sorted(by: { $0.description < $1.description })) }
    }

    /// Ends a partition between `a` and `b`.
    public func heal(_ a: PeerAddress, _ b: PeerAddress) {
        state.withLock { _ = $0.partitions.remove([a, b].sorted(by: { $0.description < $1.description })) }
    }

    /// Ends every partition and fault, and releases every hold.
    public func healAll() {
        let waiting = state.withLock { state in
            state.partitions = []
            state.dropRate = 0
            state.delay = .zero
            state.holds = []
            defer { state.held = [:] }
            return state.held.values.flatMap { $0 }
        }
        for continuation in waiting { continuation.resume() }
    }

    /// Holds back every frame of `kind` sent from `from` to `to`, on any connection between them, until
    /// ``release(_:from:to:)``: a message in flight for as long as a test needs. The frames behind a held one
    /// on its connection wait with it, as behind a stalled TCP stream; other connections go on.
    public func hold(_ kind: Wire.FrameKind, from: PeerAddress, to: PeerAddress) {
        state.withLock { _ = $0.holds.insert(Hold(kind: kind, from: from, to: to)) }
    }

    /// Delivers the frames ``hold(_:from:to:)`` held back, in order, and lets the next ones through.
    public func release(_ kind: Wire.FrameKind, from: PeerAddress, to: PeerAddress) {
        let hold = Hold(kind: kind, from: from, to: to)
        let waiting = state.withLock { state in
            state.holds.remove(hold)
            return state.held.removeValue(forKey: hold) ?? []
        }
        for continuation in waiting { continuation.resume() }
    }

    /// How many frames ``hold(_:from:to:)`` holds back now (at most one per connection).
    public func heldFrames(_ kind: Wire.FrameKind, from: PeerAddress, to: PeerAddress) -> Int {
        state.withLock { $0.held[Hold(kind: kind, from: from, to: to)]?.count ?? 0 }
    }

    /// Returns once a frame of `kind` from `from` to `to` may be delivered.
    func waitWhileHeld(_ kind: Wire.FrameKind, from: PeerAddress, to: PeerAddress) async {
        let hold = Hold(kind: kind, from: from, to: to)
        guard state.withLock({ $0.holds.contains(hold) }) else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let free = state.withLock { state -> Bool in
                guard state.holds.contains(hold) else { return true }
                state.held[hold, default: []].append(continuation)
                return false
            }
            if free { continuation.resume() }
        }
    }

    /// Drops this share of frames (0...1) at random.
    public func setDropRate(_ rate: Double) { state.withLock { $0.dropRate = rate } }

    /// Delays every frame by this long.
    public func setDelay(_ delay: Duration) { state.withLock { $0.delay = delay } }

    /// Closes every connection that has `address` at one end, as a crash of that node would.
    public func disconnect(_ address: PeerAddress) {
        let pipes = state.withLock { state in state.pipes.values.filter { $0.ends.contains(address) } }
        for pipe in pipes { pipe.close() }
    }

    func fault(from: PeerAddress, to: PeerAddress) -> (drop: Bool, delay: Duration) {
        state.withLock { state in
            let key = [from, to].sorted(by: { $0.description < $1.description })
            if state.partitions.contains(key) { return (true, .zero) }
            if state.dropRate > 0 && Double.random(in: 0..<1) < state.dropRate { return (true, .zero) }
            return (false, state.delay)
        }
    }
}

/// A ``Transport`` over an ``InMemoryNetwork``.
public final class InMemoryTransport: Transport {
    let network: InMemoryNetwork
    let handshake: HandshakeConfiguration
    let maximumFrameSize: Int
    let logger: Logger
    private let identity: Mutex<PeerIdentity>
    private let bound = Mutex<(address: PeerAddress?, delegate: (any ConnectionDelegate)?)>((nil, nil))
    private let accepting = Atomic<Bool>(false)

    /// Creates a transport on `network`.
    /// - Parameter maximumFrameSize: The largest frame a connection sends (header and body), in bytes; a
    ///   larger one fails alone (see ``Connection/checkedSend(_:)``). Default: 16 MiB, as over TCP.
    public init(
        network: InMemoryNetwork, handshake: HandshakeConfiguration, logger: Logger,
        maximumFrameSize: Int = Wire.defaultMaximumFrameSize
    ) {
        self.network = network
        self.handshake = handshake
        self.maximumFrameSize = maximumFrameSize
        self.logger = logger
        self.identity = Mutex(
            PeerIdentity(role: .client, nodeID: .init(unchecked: "client"), incarnation: 0, listenAddress: ""))
    }

    public func setLocalIdentity(_ identity: PeerIdentity) { self.identity.withLock { $0 = identity } }

    public var taskExecutor: (any TaskExecutor)? { nil }

    /// The in-memory transport moves no bytes; its statistics stay at zero.
    public var statistics: TransportStatistics { TransportStatistics() }

    public func bind(_ address: PeerAddress, delegate: any ConnectionDelegate) async throws -> PeerAddress {
        try network.state.withLock { state in
            var address = address
            if address.port == 0 {
                address.port = state.nextPort
                state.nextPort += 1
            }
            guard state.listeners[address] == nil else {
                throw TransportError(.connectFailed, "address \(address) is in use")
            }
            state.listeners[address] = self
            bound.withLock { $0 = (address, delegate) }
            return address
        }
    }

    public func startAccepting() async {
        accepting.store(true, ordering: .releasing)
    }

    public func connect(to address: PeerAddress, delegate: any ConnectionDelegate) async throws -> any Connection {
        guard let listener = network.state.withLock({ $0.listeners[address] }),
            listener.accepting.load(ordering: .acquiring),
            let listenerDelegate = listener.bound.withLock({ $0.delegate })
        else {
            throw TransportError(.connectFailed, "nothing listens on \(address)")
        }
        let localAddress = bound.withLock { $0.address } ?? PeerAddress(host: "client", port: 0)
        let pipe = InMemoryPipe(network: network, ends: [localAddress, address])
        let initiator = FrameSession(
            side: .initiator, configuration: handshake, local: identity.withLock { $0 }, sink: pipe.sink(from: 0),
            delegate: delegate, logger: logger, maximumFrameSize: maximumFrameSize)
        let acceptor = FrameSession(
            side: .acceptor, configuration: listener.handshake, local: listener.identity.withLock { $0 },
            sink: pipe.sink(from: 1), delegate: listenerDelegate, logger: listener.logger,
            maximumFrameSize: listener.maximumFrameSize)
        pipe.attach(initiator, acceptor)
        network.state.withLock { $0.pipes[ObjectIdentifier(pipe)] = pipe }
        // As over TCP, a handshake that does not finish in time (its frames dropped by an injected fault,
        // say) closes the connection instead of leaving the caller waiting forever.
        let timeout = handshake.timeout
        Task {
            try? await Task.sleep(for: timeout)
            for session in [initiator, acceptor] where session.isHandshaking {
                session.fail(TransportError(.timeout, "handshake did not finish in \(timeout)"))
            }
        }
        return try await withCheckedThrowingContinuation { continuation in
            let once = Mutex(false)
            initiator.setOnEstablished { result in
                guard
                    once.withLock({ done in
                        defer { done = true }; return !done
                    })
                else { return }
                continuation.resume(with: result.mapError { $0 as any Error })
            }
            initiator.start()
        }
    }

    public func shutdown() async {
        let address = bound.withLock { state in
            defer { state = (nil, nil) }
            return state.address
        }
        guard let address else { return }
        network.state.withLock { _ = $0.listeners.removeValue(forKey: address) }
        network.disconnect(address)
    }
}

/// Two directions of frames between two sessions, each delivered in order by its own task.
final class InMemoryPipe: Sendable {
    let network: InMemoryNetwork
    let ends: [PeerAddress]
    private let streams: [(stream: AsyncStream<Wire.Frame>, continuation: AsyncStream<Wire.Frame>.Continuation)]
    private let sessions = Mutex<[FrameSession]>([])
    private let isClosed = Mutex(false)

    init(network: InMemoryNetwork, ends: [PeerAddress]) {
        self.network = network
        self.ends = ends
        self.streams = [AsyncStream.makeStream(of: Wire.Frame.self), AsyncStream.makeStream(of: Wire.Frame.self)]
    }

    struct Sink: FrameSink {
        let pipe: InMemoryPipe
        let direction: Int
        func write(_ frame: Wire.Frame) { pipe.streams[direction].continuation.yield(frame) }
        var taskExecutor: (any TaskExecutor)? { nil }
        func close() { pipe.close() }
    }

    /// The sink of the session at end `index`: what it writes goes to the other end.
    func sink(from index: Int) -> Sink { Sink(pipe: self, direction: index) }

    func attach(_ first: FrameSession, _ second: FrameSession) {
        sessions.withLock { $0 = [first, second] }
        for direction in 0..<2 {
            let receiver = direction == 0 ? second : first
            let from = ends[direction]
            let to = ends[1 - direction]
            let stream = streams[direction].stream
            let network = self.network
            Task {
                for await frame in stream {
                    let fault = network.fault(from: from, to: to)
                    if fault.drop { continue }
                    if fault.delay > .zero { try? await Task.sleep(for: fault.delay) }
                    await network.waitWhileHeld(frame.kind, from: from, to: to)
                    receiver.receive(frame)
                }
            }
        }
    }

    func close() {
        guard
            isClosed.withLock({ closed in
                defer { closed = true }; return !closed
            })
        else { return }
        for s in streams { s.continuation.finish() }
        network.state.withLock { _ = $0.pipes.removeValue(forKey: ObjectIdentifier(self)) }
        for session in sessions.withLock({ $0 }) { session.closed(error: nil) }
    }
}
