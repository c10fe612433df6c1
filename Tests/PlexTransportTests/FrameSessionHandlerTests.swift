import Logging
import NIOCore
import NIOEmbedded
import PlexCore
import PlexTestKit
import PlexWire
import Synchronization
import Testing

@testable import PlexTransport

final class RecordingDelegate: ConnectionDelegate {
    let frames = Mutex<[Wire.Frame]>([])
    let established = Mutex<[PeerIdentity]>([])
    func connectionEstablished(_ connection: any Connection) { established.withLock { $0.append(connection.peer) } }
    func received(_ frame: Wire.Frame, on connection: any Connection) { frames.withLock { $0.append(frame) } }
    func connectionClosed(_ connection: any Connection, error: (any Error)?) {}
}

/// The production read path (`FrameSessionHandler`), fed through an `EmbeddedChannel` one byte at a time.
@Suite("Frame session handler", .timeLimit(.minutes(1)))
struct FrameSessionHandlerTests {
    let configuration = HandshakeConfiguration(clusterName: "c", secret: Array("secret-0123456789".utf8))

    static let limits = FrameSessionHandler.Limits(
        maximumFrameSize: 1 << 20, handshakeBufferLimit: 64 * 1024, handshakeTimeout: .seconds(5))

    func makeChannel(
        delegate: RecordingDelegate, limits: FrameSessionHandler.Limits = Self.limits,
        logger: Logger = Logger(label: "test")
    ) throws -> (EmbeddedChannel, FrameSessionHandler) {
        let channel = EmbeddedChannel()
        let counters = TrafficCounters()
        let sink = TCPFrameSink(
            channel: channel, counters: counters, executor: EventLoopTaskExecutor(eventLoop: channel.eventLoop))
        let session = FrameSession(
            side: .acceptor, configuration: configuration,
            local: PeerIdentity(role: .node, nodeID: NodeID(unchecked: "b"), incarnation: 1, listenAddress: "h:2"),
            sink: sink, delegate: delegate, logger: logger, maximumFrameSize: limits.maximumFrameSize)
        let handler = FrameSessionHandler(
            session: session, side: .acceptor, logger: logger, counters: counters, limits: limits)
        try channel.pipeline.syncOperations.addHandler(handler)
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        #expect(channel.isActive)
        return (channel, handler)
    }

    func makeChannel(delegate: RecordingDelegate) throws -> EmbeddedChannel {
        try makeChannel(delegate: delegate, limits: Self.limits).0
    }

    /// Runs the handshake as initiator `a`, each frame fed one byte at a time.
    func handshake(_ channel: EmbeddedChannel) throws {
        var client = HandshakeStateMachine(
            side: .initiator, configuration: configuration,
            local: PeerIdentity(role: .node, nodeID: NodeID(unchecked: "a"), incarnation: 3, listenAddress: "h:1"))
        var toServer = client.start().compactMap { if case .send(let f) = $0 { f } else { nil } }
        for _ in 0..<2 {
            for frame in toServer { try drip(frame, into: channel) }
            toServer = []
            for reply in try written(channel) {
                toServer += client.receive(reply).compactMap { if case .send(let f) = $0 { f } else { nil } }
            }
        }
        #expect(client.isEstablished)
    }

    /// Feeds `frame` to the channel one byte per read.
    func drip(_ frame: Wire.Frame, into channel: EmbeddedChannel) throws {
        var bytes = ByteBuffer()
        bytes.writeFrame(frame)
        while let byte = bytes.readSlice(length: 1) { try channel.writeInbound(byte) }
    }

    /// Frames the handler wrote back.
    func written(_ channel: EmbeddedChannel) throws -> [Wire.Frame] {
        channel.embeddedEventLoop.run()
        var frames: [Wire.Frame] = []
        while var buffer = try channel.readOutbound(as: ByteBuffer.self) {
            while let frame = try FrameDecoder.decodeFrame(from: &buffer, maximumFrameSize: 1 << 20) {
                frames.append(frame)
            }
        }
        return frames
    }

    @Test("a handshake and calls delivered one byte at a time reach the session whole")
    func byteByByte() throws {
        let delegate = RecordingDelegate()
        let channel = try makeChannel(delegate: delegate)
        try handshake(channel)
        #expect(delegate.established.withLock { $0.map(\.nodeID.rawValue) } == ["a"])
        for i in 0..<3 {
            try drip(
                Wire.Frame(kind: .tell, correlationID: UInt64(i), body: ByteBuffer(string: "body \(i)")), into: channel)
        }
        let frames = delegate.frames.withLock { $0 }
        #expect(frames.map(\.correlationID) == [0, 1, 2])
        #expect(frames.map { String(buffer: $0.body) } == ["body 0", "body 1", "body 2"])
        #expect(channel.isActive)
    }

    @Test("an oversized frame closes the channel after its length prefix")
    func oversized() throws {
        let channel = try makeChannel(delegate: RecordingDelegate())
        try channel.writeInbound(ByteBuffer(bytes: [0x00, 0x20, 0x00, 0x00]))  // 2 MiB > 1 MiB
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
    }

    @Test("before the handshake, a frame announcing more than the buffer limit closes the connection, logged")
    func overPreHandshakeLimit() throws {
        let logs = LogCapture()
        var limits = Self.limits
        limits.handshakeBufferLimit = 1024
        let (channel, handler) = try makeChannel(
            delegate: RecordingDelegate(), limits: limits, logger: logs.logger(label: "test"))
        // 2,000 bytes: under the maximum frame size, over the pre-handshake limit. Only the header arrives.
        try channel.writeInbound(ByteBuffer(bytes: [0x00, 0x00, 0x07, 0xD0, 0x01, 0x01]))
        channel.embeddedEventLoop.run()
        #expect(!channel.isActive)
        #expect(handler.pending == nil)
        #expect(
            logs.all.contains {
                $0.contains("closing connection before its handshake") && $0.contains("TransportError.limitExceeded")
            })
    }

    @Test("after the handshake the same frame is accepted: the small limit applies only before it")
    func limitLiftsAfterHandshake() throws {
        let delegate = RecordingDelegate()
        var limits = Self.limits
        limits.handshakeBufferLimit = 1024
        let (channel, _) = try makeChannel(delegate: delegate, limits: limits)
        try handshake(channel)
        let body = ByteBuffer(repeating: 7, count: 2000)
        try drip(Wire.Frame(kind: .tell, correlationID: 9, body: body), into: channel)
        #expect(delegate.frames.withLock { $0.map(\.body) } == [body])
        #expect(channel.isActive)
    }

    @Test("a 16 MiB frame arriving in 64 KiB reads is accumulated in one buffer, never copied again, and decodes")
    func largeFrameInPieces() throws {
        let delegate = RecordingDelegate()
        var limits = Self.limits
        limits.maximumFrameSize = 32 << 20
        let (channel, handler) = try makeChannel(delegate: delegate, limits: limits)
        try handshake(channel)
        var big = ByteBuffer()
        big.reserveCapacity(16 << 20)
        let pattern = (0..<256).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        for _ in 0..<((16 << 20) / 256) { big.writeBytes(pattern) }
        let frames = [
            Wire.Frame(kind: .tell, correlationID: 1, body: ByteBuffer(string: "before")),
            Wire.Frame(kind: .tell, correlationID: 2, body: big),
            Wire.Frame(kind: .tell, correlationID: 3, body: ByteBuffer(string: "after")),
        ]
        var stream = ByteBuffer()
        for frame in frames { stream.writeFrame(frame) }
        var reads = 0
        var storages = Set<UInt>()
        while stream.readableBytes > 0 {
            try channel.writeInbound(stream.readSlice(length: min(64 * 1024, stream.readableBytes))!)
            reads += 1
            if let pending = handler.pending, pending.readableBytes > 64 * 1024 {
                // Where the partial frame lives: one allocation from its first partial read to its last.
                storages.insert(pending.withUnsafeReadableBytes { UInt(bitPattern: $0.baseAddress) })
            }
        }
        #expect(reads > 250)
        #expect(storages.count == 1, "the partial frame moved \(storages.count - 1) times")
        #expect(handler.pending == nil)
        let received = delegate.frames.withLock { $0 }
        #expect(received.map(\.correlationID) == [1, 2, 3])
        #expect(received.map(\.body) == frames.map(\.body))
        #expect(channel.isActive)
    }

    @Test("a stranger that sends nothing is closed at the handshake deadline, logged")
    func silentStranger() throws {
        let logs = LogCapture()
        var limits = Self.limits
        limits.handshakeTimeout = .seconds(1)
        let (channel, _) = try makeChannel(
            delegate: RecordingDelegate(), limits: limits, logger: logs.logger(label: "test"))
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(999))
        #expect(channel.isActive)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(2))
        #expect(!channel.isActive)
        #expect(logs.all.contains { $0.contains("handshake timed out") && $0.contains("TransportError.timeout") })
    }

    @Test("a stranger that sends one byte every 100 ms is closed at the deadline all the same")
    func slowStranger() throws {
        let logs = LogCapture()
        var limits = Self.limits
        limits.handshakeTimeout = .seconds(1)
        let (channel, _) = try makeChannel(
            delegate: RecordingDelegate(), limits: limits, logger: logs.logger(label: "test"))
        var hello = HandshakeStateMachine(
            side: .initiator, configuration: configuration,
            local: PeerIdentity(role: .node, nodeID: NodeID(unchecked: "a"), incarnation: 3, listenAddress: "h:1"))
        var bytes = ByteBuffer()
        for case .send(let frame) in hello.start() { bytes.writeFrame(frame) }
        var elapsed = Duration.zero
        while channel.isActive, let byte = bytes.readSlice(length: 1) {
            try channel.writeInbound(byte)
            channel.embeddedEventLoop.advanceTime(by: .milliseconds(100))
            elapsed += .milliseconds(100)
        }
        #expect(!channel.isActive)
        #expect(elapsed == .seconds(1), "closed at the deadline, not before or after")
        #expect(bytes.readableBytes > 0, "the hello was still incomplete")
        #expect(logs.all.contains { $0.contains("handshake timed out") && $0.contains("TransportError.timeout") })
    }
}
