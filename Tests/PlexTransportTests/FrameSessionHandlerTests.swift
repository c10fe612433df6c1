import Logging
import NIOCore
import NIOEmbedded
import PlexCore
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
@Suite("Frame session handler")
struct FrameSessionHandlerTests {
    let configuration = HandshakeConfiguration(clusterName: "c", secret: Array("secret-0123456789".utf8))

    func makeChannel(delegate: RecordingDelegate) throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        let counters = TrafficCounters()
        let sink = TCPFrameSink(
            channel: channel, counters: counters, executor: EventLoopTaskExecutor(eventLoop: channel.eventLoop))
        let session = FrameSession(
            side: .acceptor, configuration: configuration,
            local: PeerIdentity(role: .node, nodeID: NodeID(unchecked: "b"), incarnation: 1, listenAddress: "h:2"),
            sink: sink, delegate: delegate, logger: Logger(label: "test"))
        try channel.pipeline.syncOperations.addHandler(
            FrameSessionHandler(
                session: session, side: .acceptor, logger: Logger(label: "test"), timeout: .seconds(5),
                counters: counters, maximumFrameSize: 1 << 20))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        #expect(channel.isActive)
        return channel
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
}
