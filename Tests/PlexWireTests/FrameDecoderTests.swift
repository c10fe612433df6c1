import Foundation
import NIOCore
import NIOTestUtils
import PlexCore
import PlexExamples
import PlexWire
import Testing

/// The golden fixtures in proto/fixtures, written by scripts/generate-fixtures.py from the documented layout.
func fixture(_ name: String) throws -> ByteBuffer {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    let data = try Data(contentsOf: root.appendingPathComponent("proto/fixtures/\(name)"))
    return ByteBuffer(bytes: data)
}

@Suite("Frame decoding")
struct FrameDecoderTests {
    @Test("golden call frame decodes, header and body, fed byte by byte and in every split")
    func goldenCall() throws {
        let bytes = try fixture("call-counter-increment.bin")
        let expectedBody = try Wire.CallBody(reading: bytes.getSlice(at: 16, length: bytes.readableBytes - 16)!)
        let expected = Wire.Frame(
            kind: .call, correlationID: 42, body: bytes.getSlice(at: 16, length: bytes.readableBytes - 16)!)
        // The verifier feeds the input whole, byte by byte, and in random splits, and checks leftovers.
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(bytes, [expected])], decoderFactory: { FrameDecoder() })
        #expect(expectedBody.actor == ActorID(typeName: "counter", key: "c1"))
        #expect(expectedBody.timeoutNanoseconds == 5_000_000_000)
        #expect(expectedBody.callID == CallID(origin: 0x0102_0304_0506_0708, sequence: 9))
        #expect(expectedBody.idempotencyKey == nil)
        let request = try expectedBody.payload.withUnsafeReadableBytes {
            try BinaryMessageCodec().decode(Counter.Request.self, from: $0)
        }
        guard case .increment = request else {
            Issue.record("expected .increment, got \(request)")
            return
        }
    }

    @Test(
        "golden frames of every kind decode",
        arguments: [
            ("reply-counter.bin", Wire.FrameKind.reply, UInt64(42)),
            ("error-reply-node-unavailable.bin", .errorReply, 43),
            ("gossip.bin", .gossip, 0),
            ("handshake-hello.bin", .handshake, 0),
            ("tell-forwarded-json.bin", .tell, 0),
        ])
    func goldenKinds(name: String, kind: Wire.FrameKind, correlation: UInt64) throws {
        var bytes = try fixture(name)
        let frame = try #require(try FrameDecoder.decodeFrame(from: &bytes, maximumFrameSize: 1 << 20))
        #expect(frame.kind == kind)
        #expect(frame.correlationID == correlation)
        #expect(bytes.readableBytes == 0)
        switch kind {
        case .reply:
            let reply = try frame.body.withUnsafeReadableBytes {
                try BinaryMessageCodec().decode(Counter.Reply.self, from: $0)
            }
            #expect(reply == Counter.Reply(count: 1, node: "node-1"))
        case .errorReply:
            let body = try Wire.decode(Plexspaces_V1_ErrorBody.self, from: frame.body)
            #expect(body.code == 2)
            #expect(body.message == "node-3 is unreachable")
        case .gossip:
            let gossip = try Wire.decode(Plexspaces_V1_Gossip.self, from: frame.body)
            #expect(gossip.fromNode == "node-1")
            #expect(gossip.members.first?.address == "127.0.0.1:7101")
        case .handshake:
            let handshake = try Wire.decode(Plexspaces_V1_Handshake.self, from: frame.body)
            #expect(handshake.hello.clusterName == "local")
            #expect(handshake.hello.nonce.count == 32)
        case .tell:
            #expect(frame.flags == [.forwarded, .jsonPayload])
            let body = try Wire.CallBody(reading: frame.body)
            #expect(String(buffer: body.payload) == #"{"get":{}}"#)
        default: Issue.record("unexpected kind")
        }
    }

    @Test("encoding a frame reproduces the golden bytes")
    func encodeMatchesGolden() throws {
        let golden = try fixture("call-counter-increment.bin")
        var body = ByteBuffer()
        Wire.CallBody.writeHeader(
            actor: ActorID(typeName: "counter", key: "c1"), messageType: "", idempotencyKey: nil,
            timeoutNanoseconds: 5_000_000_000, callID: CallID(origin: 0x0102_0304_0506_0708, sequence: 9), to: &body)
        body.writeBytes(try BinaryMessageCodec().encode(Counter.Request.increment))
        var encoded = ByteBuffer()
        encoded.writeFrame(Wire.Frame(kind: .call, correlationID: 42, body: body))
        #expect(encoded == golden)
    }

    @Test("several frames in one buffer, in random splits, come out in order")
    func streamOfFrames() throws {
        var stream = ByteBuffer()
        var expected: [Wire.Frame] = []
        for i in 0..<12 {
            let frame = Wire.Frame(
                kind: i % 2 == 0 ? .call : .reply, flags: [], correlationID: UInt64(i),
                body: ByteBuffer(bytes: (0..<(i * 37 % 300)).map { UInt8(truncatingIfNeeded: $0) }))
            stream.writeFrame(frame)
            expected.append(frame)
        }
        try ByteToMessageDecoderVerifier.verifyDecoder(
            inputOutputPairs: [(stream, expected)], decoderFactory: { FrameDecoder() })
    }

    @Test("an oversized length prefix is refused after four bytes")
    func oversized() throws {
        var buffer = ByteBuffer(bytes: [0x01, 0x00, 0x00, 0x01])  // 16 MiB + 1
        #expect(throws: FrameError(.tooLarge, "frame of 16777217 bytes exceeds the maximum of 16777216")) {
            _ = try FrameDecoder.decodeFrame(from: &buffer, maximumFrameSize: Wire.defaultMaximumFrameSize)
        }
        var small = ByteBuffer(bytes: [0x00, 0x00, 0x04, 0x01])
        let error = #expect(throws: FrameError.self) {
            _ = try FrameDecoder.decodeFrame(from: &small, maximumFrameSize: 1024)
        }
        #expect(error?.code == .tooLarge)
    }

    @Test("unknown version, unknown kind and a length shorter than the header are typed errors")
    func badHeaders() throws {
        var golden = try fixture("reply-counter.bin")
        var badVersion = golden
        badVersion.setInteger(UInt8(9), at: 4)
        #expect(throws: FrameError.self) {
            _ = try FrameDecoder.decodeFrame(from: &badVersion, maximumFrameSize: 1 << 20)
        }
        var badKind = golden
        badKind.setInteger(UInt8(200), at: 5)
        let kindError = #expect(throws: FrameError.self) {
            _ = try FrameDecoder.decodeFrame(from: &badKind, maximumFrameSize: 1 << 20)
        }
        #expect(kindError?.code == .unknownKind)
        var short = ByteBuffer(bytes: [0, 0, 0, 3, 1, 4, 0])
        let shortError = #expect(throws: FrameError.self) {
            _ = try FrameDecoder.decodeFrame(from: &short, maximumFrameSize: 1 << 20)
        }
        #expect(shortError?.code == .tooShort)
        // A prefix of a valid frame is simply incomplete.
        var partial = golden.readSlice(length: 10)!
        #expect(try FrameDecoder.decodeFrame(from: &partial, maximumFrameSize: 1 << 20) == nil)
        #expect(partial.readableBytes == 10)
    }

    @Test("a truncated or garbage call body is a malformed-body error", arguments: [0, 1, 5, 20, 40])
    func truncatedCallBody(length: Int) throws {
        var golden = try fixture("call-counter-increment.bin")
        let frame = try #require(try FrameDecoder.decodeFrame(from: &golden, maximumFrameSize: 1 << 20))
        let truncated = frame.body.getSlice(at: frame.body.readerIndex, length: length)!
        let error = #expect(throws: FrameError.self) { _ = try Wire.CallBody(reading: truncated) }
        #expect(error?.code == .malformedBody)
    }

    @Test("garbage protobuf bodies are malformed-body errors")
    func garbageProtobuf() throws {
        let error = #expect(throws: FrameError.self) {
            _ = try Wire.decode(Plexspaces_V1_Gossip.self, from: ByteBuffer(bytes: [0x0A, 0xFF, 0xFF, 0x01]))
        }
        #expect(error?.code == .malformedBody)
    }
}
