import Foundation
import NIOCore
import PlexCore
import PlexWire
import Testing

@testable import PlexTransport

/// The golden handshake frames in proto/fixtures, written by scripts/generate-fixtures.py (Python's hmac, from
/// the layout in proto/README.md): the Swift machines must produce them byte for byte.
@Suite("Golden handshake frames")
struct HandshakeFixtureTests {
    static func fixture(_ name: String) throws -> ByteBuffer {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        return ByteBuffer(bytes: try Data(contentsOf: root.appendingPathComponent("proto/fixtures/\(name)")))
    }

    static func frame(_ name: String) throws -> Wire.Frame {
        var bytes = try fixture(name)
        return try #require(try FrameDecoder.decodeFrame(from: &bytes, maximumFrameSize: 1 << 20))
    }

    static func bytes(_ actions: [HandshakeStateMachine.Action]) throws -> ByteBuffer {
        let frame = try #require(actions.compactMap { if case .send(let f) = $0 { f } else { nil } }.first)
        var buffer = ByteBuffer()
        buffer.writeFrame(frame)
        return buffer
    }

    let configuration = HandshakeConfiguration(clusterName: "local", secret: Array("fixture-secret-0123456789".utf8))
    let node1 = PeerIdentity(
        role: .node, nodeID: NodeID(unchecked: "node-1"), incarnation: 3, listenAddress: "127.0.0.1:7101")
    let node2 = PeerIdentity(
        role: .node, nodeID: NodeID(unchecked: "node-2"), incarnation: 5, listenAddress: "127.0.0.1:7102")

    @Test("hello, challenge (acceptor's proof) and proof (initiator's) match the documented layout byte for byte")
    func goldenExchange() throws {
        var initiator = HandshakeStateMachine(side: .initiator, configuration: configuration, local: node1)
        var acceptor = HandshakeStateMachine(side: .acceptor, configuration: configuration, local: node2)
        #expect(
            try Self.bytes(initiator.start(nonce: Array(repeating: 0xAB, count: 32)))
                == Self.fixture("handshake-hello.bin"))
        #expect(
            try Self.bytes(
                acceptor.receive(Self.frame("handshake-hello.bin"), nonce: Array(repeating: 0xCD, count: 32)))
                == Self.fixture("handshake-challenge.bin"))
        #expect(
            try Self.bytes(initiator.receive(Self.frame("handshake-challenge.bin")))
                == Self.fixture("handshake-proof.bin"))
        let end = acceptor.receive(try Self.frame("handshake-proof.bin"))
        #expect(end.compactMap(\.established).first == node1)
    }
}
