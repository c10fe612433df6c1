import NIOCore
import PlexCore
import PlexWire
import Testing

@Suite("Call body: the trace context between the call id and the payload")
struct CallBodyTraceTests {
    let actor = ActorID(typeName: "counter", key: "c1")
    let callID = CallID(origin: 7, sequence: 9)

    @Test("a body with trace fields reads back with them, its payload intact, under the traceContext flag")
    func roundTrip() throws {
        let trace = [
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", "tracestate": "plex=1",
        ]
        let body = Wire.CallBody(
            actor: actor, messageType: "", timeoutNanoseconds: 5, callID: callID, trace: trace,
            payload: ByteBuffer(string: "{}"))
        #expect(body.flags == .traceContext)
        var buffer = ByteBuffer()
        body.write(to: &buffer)
        let read = try Wire.CallBody(reading: buffer, flags: [.jsonPayload, .traceContext])
        #expect(read == body)
        #expect(String(buffer: read.payload) == "{}")
        // Read without the flag, the trace would be taken for the payload: the flag is what says it is there.
        #expect(try Wire.CallBody(reading: buffer).payload != body.payload)
    }

    @Test("a body without trace fields is the layout it always was, with no flag")
    func noTraceNoBytes() throws {
        let plain = Wire.CallBody(
            actor: actor, messageType: "", timeoutNanoseconds: 0, callID: callID, payload: ByteBuffer(string: "{}"))
        #expect(plain.flags.isEmpty)
        var withTrace = plain
        withTrace.trace = ["k": "v"]
        var a = ByteBuffer()
        var b = ByteBuffer()
        plain.write(to: &a)
        withTrace.write(to: &b)
        #expect(b.readableBytes == a.readableBytes + 1 + 2 + 1 + 2 + 1, "count, then one name and value")
        #expect(
            Wire.callBody(
                to: actor, payload: Array("{}".utf8), idempotencyKey: nil, deadline: .never, now: 0, callID: callID)
                == a)
    }

    @Test("a truncated or malformed trace section is a malformedBody error")
    func truncated() throws {
        var buffer = ByteBuffer()
        Wire.CallBody.writeHeader(
            actor: actor, messageType: "", idempotencyKey: nil, timeoutNanoseconds: 0, callID: callID, to: &buffer)
        var noCount = buffer
        let error = #expect(throws: FrameError.self) { _ = try Wire.CallBody(reading: noCount, flags: .traceContext) }
        #expect(error?.code == .malformedBody)
        buffer.writeInteger(UInt8(2))
        buffer.writeInteger(UInt16(1))
        buffer.writeString("k")
        buffer.writeInteger(UInt16(1))
        buffer.writeString("v")  // one field of the two it declared
        noCount = buffer
        #expect(throws: FrameError.self) { _ = try Wire.CallBody(reading: noCount, flags: .traceContext) }
    }

    @Test("encodedSize is the bytes write(to:) takes, with and without a key and a trace, for long texts too")
    func encodedSize() {
        let long = String(repeating: "k", count: 70_000)
        for (key, idempotencyKey, trace) in [
            ("c1", nil, [:]), ("c1", "retry-1", ["traceparent": "00-ab-cd-01", "b": "2"]),
            (long, long, [:] as [String: String]),
        ] {
            let body = Wire.CallBody(
                actor: ActorID(typeName: "counter", key: key), messageType: "Counter.Request",
                idempotencyKey: idempotencyKey, timeoutNanoseconds: 5, callID: callID, trace: trace,
                payload: ByteBuffer(string: #"{"increment":{}}"#))
            var buffer = ByteBuffer()
            body.write(to: &buffer)
            #expect(body.encodedSize == buffer.readableBytes)
        }
    }
}
