public import NIOCore
public import PlexCore

extension Wire {
    /// The body of `call` and `tell` frames, in a fixed binary layout (the hot path skips protobuf).
    ///
    /// ```
    /// u16 type name length | type name (UTF-8)
    /// u16 key length       | key (UTF-8)
    /// u16 message type length | message type name (UTF-8)
    /// u16 idempotency key length | idempotency key (UTF-8; length 0 = none)
    /// u64 deadline: nanoseconds the caller still waits, 0 = none
    /// u64 call id origin | u64 call id sequence
    /// with the frame flag `traceContext` only:
    ///   u8 field count | per field: u16 name length | name | u16 value length | value (UTF-8)
    /// payload: the rest of the frame, encoded by the node's codec (or JSON, per the frame's flags)
    /// ```
    /// All integers are big-endian. The trace fields are what the tracer injects (for OpenTelemetry, W3C's
    /// `traceparent` and `tracestate`); a frame without the flag has none, so a node that does not trace pays
    /// nothing.
    public struct CallBody: Sendable, Hashable {
        /// The target actor.
        public var actor: ActorID
        /// The request's Swift type name, for diagnostics and version checks.
        public var messageType: String
        /// The caller's idempotency key, if any.
        public var idempotencyKey: String?
        /// How long the caller still waits, in nanoseconds; 0 = no deadline.
        public var timeoutNanoseconds: UInt64
        /// The call's identity.
        public var callID: CallID
        /// The caller's trace context (empty: none); sent with the frame flag ``FrameFlags/traceContext``.
        public var trace: [String: String]
        /// The encoded request.
        public var payload: ByteBuffer

        /// Creates a call body.
        public init(
            actor: ActorID, messageType: String, idempotencyKey: String? = nil, timeoutNanoseconds: UInt64,
            callID: CallID, trace: [String: String] = [:], payload: ByteBuffer
        ) {
            self.actor = actor
            self.messageType = messageType
            self.idempotencyKey = idempotencyKey
            self.timeoutNanoseconds = timeoutNanoseconds
            self.callID = callID
            self.trace = trace
            self.payload = payload
        }

        /// The frame flags this body needs: ``FrameFlags/traceContext`` when it carries a trace.
        public var flags: FrameFlags { FrameFlags(carrying: trace) }

        /// Writes the body into `buffer` (send it with ``flags``).
        public func write(to buffer: inout ByteBuffer) {
            Self.writeHeader(
                actor: actor, messageType: messageType, idempotencyKey: idempotencyKey,
                timeoutNanoseconds: timeoutNanoseconds, callID: callID, trace: trace, to: &buffer)
            buffer.writeImmutableBuffer(payload)
        }

        /// Writes everything but the payload, which the caller appends. A non-empty `trace` needs the frame
        /// flag ``FrameFlags/traceContext``; at most 255 fields are written.
        public static func writeHeader(
            actor: ActorID, messageType: String, idempotencyKey: String?, timeoutNanoseconds: UInt64,
            callID: CallID, trace: [String: String] = [:], to buffer: inout ByteBuffer
        ) {
            buffer.writeShortString(actor.typeName)
            buffer.writeShortString(actor.key)
            buffer.writeShortString(messageType)
            buffer.writeShortString(idempotencyKey ?? "")
            buffer.writeInteger(timeoutNanoseconds)
            buffer.writeInteger(callID.origin)
            buffer.writeInteger(callID.sequence)
            if !trace.isEmpty {
                let fields = trace.sorted { $0.key < $1.key }.prefix(Int(UInt8.max))
                buffer.writeInteger(UInt8(fields.count))
                for (name, value) in fields {
                    buffer.writeShortString(name)
                    buffer.writeShortString(value)
                }
            }
        }

        /// The bytes ``write(to:)`` takes: what the body adds to a frame.
        public var encodedSize: Int {
            var size = 4 * 2 + 3 * 8 + Self.shortStringSize(actor.typeName) + Self.shortStringSize(actor.key)
            size += Self.shortStringSize(messageType) + Self.shortStringSize(idempotencyKey ?? "")
            if !trace.isEmpty {
                size += 1
                for (name, value) in trace.sorted(by: { $0.key < $1.key }).prefix(Int(UInt8.max)) {
                    size += 4 + Self.shortStringSize(name) + Self.shortStringSize(value)
                }
            }
            return size + payload.readableBytes
        }

        /// The bytes of a short string's text as written (at most `UInt16.max`).
        private static func shortStringSize(_ text: String) -> Int {
            min(text.utf8.count, Int(UInt16.max))
        }

        /// Reads a call body; `flags` are its frame's (``FrameFlags/traceContext`` says a trace follows the
        /// call id).
        /// - Throws: ``FrameError`` with code `malformedBody` when a field is missing or not UTF-8.
        public init(reading buffer: ByteBuffer, flags: FrameFlags = []) throws {
            var buffer = buffer
            guard let type = buffer.readShortString(), !type.isEmpty,
                let key = buffer.readShortString(),
                let messageType = buffer.readShortString(),
                let idempotencyKey = buffer.readShortString(),
                let timeout = buffer.readInteger(as: UInt64.self),
                let origin = buffer.readInteger(as: UInt64.self),
                let sequence = buffer.readInteger(as: UInt64.self)
            else {
                throw FrameError(.malformedBody, "call body is truncated or malformed")
            }
            self.actor = ActorID(typeName: type, key: key)
            self.messageType = messageType
            self.idempotencyKey = idempotencyKey.isEmpty ? nil : idempotencyKey
            self.timeoutNanoseconds = timeout
            self.callID = CallID(origin: origin, sequence: sequence)
            var trace: [String: String] = [:]
            if flags.contains(.traceContext) {
                guard let count = buffer.readInteger(as: UInt8.self) else {
                    throw FrameError(.malformedBody, "call body: the trace context is truncated")
                }
                for _ in 0..<count {
                    guard let name = buffer.readShortString(), let value = buffer.readShortString() else {
                        throw FrameError(.malformedBody, "call body: the trace context is truncated or malformed")
                    }
                    trace[name] = value
                }
            }
            self.trace = trace
            self.payload = buffer
        }
    }
}

extension ByteBuffer {
    /// Writes a `u16` length and the UTF-8 bytes of `text` (at most 65,535 bytes; longer text is cut).
    @inlinable
    mutating func writeShortString(_ text: String) {
        let lengthIndex = writerIndex
        writeInteger(UInt16(0))
        let written = writeString(text)
        setInteger(UInt16(clamping: written), at: lengthIndex)
        if written > Int(UInt16.max) { moveWriterIndex(to: lengthIndex + 2 + Int(UInt16.max)) }
    }

    /// Reads a `u16` length and that many UTF-8 bytes; `nil` if truncated or not valid UTF-8.
    @inlinable
    mutating func readShortString() -> String? {
        guard let length = getInteger(at: readerIndex, as: UInt16.self),
            readableBytes >= 2 + Int(length)
        else { return nil }
        moveReaderIndex(forwardBy: 2)
        return readString(length: Int(length))
    }
}
