public import NIOCore

extension Wire {
    /// What a frame carries. The raw value is the `kind` byte.
    public enum FrameKind: UInt8, Sendable, CaseIterable {
        /// Handshake step from the connecting side (`Handshake` protobuf).
        case handshake = 1
        /// Handshake step from the accepting side (`HandshakeAck` protobuf).
        case handshakeAck = 2
        /// A request that expects a reply (``CallBody``).
        case call = 3
        /// The successful reply to the call with the same correlation id (actor payload).
        case reply = 4
        /// A one-way request (``CallBody``). A nonzero correlation id asks the receiver to acknowledge it (an
        /// empty `reply`, or an `errorReply` if it refused it) once it is queued for the actor.
        case tell = 5
        /// The failure of the call with the same correlation id (`ErrorBody` protobuf).
        case errorReply = 6
        /// Membership gossip; doubles as the heartbeat (`Gossip` protobuf).
        case gossip = 7
        /// Actor state handoff (reserved for the durability layer).
        case handoff = 8
        /// The caller gave up on the call with the same correlation id; empty body.
        case cancel = 9
        /// An operator query (`AdminRequest` protobuf).
        case adminRequest = 10
        /// The answer to an operator query (`AdminReply` protobuf).
        case adminReply = 11
    }

    /// Bits of the header's `flags` field.
    public struct FrameFlags: OptionSet, Sendable, Hashable {
        public let rawValue: UInt16
        public init(rawValue: UInt16) { self.rawValue = rawValue }

        /// The call was forwarded once by a node that does not own the actor; it must not be forwarded again.
        public static let forwarded = FrameFlags(rawValue: 1 << 0)
        /// The payload is JSON instead of the node's binary codec (calls from the CLI and the gateway).
        public static let jsonPayload = FrameFlags(rawValue: 1 << 1)
        /// The call body carries the caller's trace context (``CallBody/trace``) between its call id and its
        /// payload, so that one trace spans the nodes a call crosses.
        public static let traceContext = FrameFlags(rawValue: 1 << 2)

        /// ``traceContext`` for a call body that carries `trace` fields; none for one that carries none.
        public init(carrying trace: [String: String]) { self = trace.isEmpty ? [] : .traceContext }
    }

    /// One frame: the fixed header and the body.
    public struct Frame: Sendable, Hashable {
        /// What the frame carries.
        public var kind: FrameKind
        /// Option bits.
        public var flags: FrameFlags
        /// Pairs a reply with its call; 0 for frames that belong to the connection.
        public var correlationID: UInt64
        /// The body, as the kind defines it.
        public var body: ByteBuffer

        /// Creates a frame.
        public init(kind: FrameKind, flags: FrameFlags = [], correlationID: UInt64 = 0, body: ByteBuffer) {
            self.kind = kind
            self.flags = flags
            self.correlationID = correlationID
            self.body = body
        }

        /// The bytes this frame takes on the wire, length prefix included.
        public var wireSize: Int { Wire.lengthPrefixSize + Wire.headerSize + body.readableBytes }
    }
}

extension ByteBuffer {
    /// Appends `frame` in wire form: length prefix, header, body.
    @inlinable
    public mutating func writeFrame(_ frame: Wire.Frame) {
        writeInteger(UInt32(Wire.headerSize + frame.body.readableBytes))
        writeInteger(Wire.protocolVersion)
        writeInteger(frame.kind.rawValue)
        writeInteger(frame.flags.rawValue)
        writeInteger(frame.correlationID)
        writeImmutableBuffer(frame.body)
    }
}
