public import NIOCore

/// Cuts a byte stream into ``Wire/Frame``s.
///
/// Checks the length prefix against the maximum before buffering the body, so an oversized frame is
/// refused after 4 bytes; then checks version and kind. Any violation throws ``FrameError``, and NIO
/// closes the connection.
public struct FrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = Wire.Frame

    /// The largest accepted frame, length prefix excluded.
    public let maximumFrameSize: Int

    /// Creates a decoder.
    /// - Parameter maximumFrameSize: The largest accepted frame in bytes, length prefix excluded; 16 MiB by default.
    public init(maximumFrameSize: Int = Wire.defaultMaximumFrameSize) {
        self.maximumFrameSize = maximumFrameSize
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let frame = try Self.decodeFrame(from: &buffer, maximumFrameSize: maximumFrameSize) else {
            return .needMoreData
        }
        context.fireChannelRead(Self.wrapInboundOut(frame))
        return .continue
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws
        -> DecodingState
    {
        try decode(context: context, buffer: &buffer)
    }

    /// Reads one frame from the front of `buffer`, or returns `nil` (consuming nothing) if it is not all there.
    ///
    /// - Throws: ``FrameError`` with code `tooLarge`, `tooShort`, `versionMismatch` or `unknownKind`.
    public static func decodeFrame(from buffer: inout ByteBuffer, maximumFrameSize: Int) throws -> Wire.Frame? {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return nil }
        guard length <= maximumFrameSize else {
            throw FrameError(.tooLarge, "frame of \(length) bytes exceeds the maximum of \(maximumFrameSize)")
        }
        guard length >= Wire.headerSize else {
            throw FrameError(.tooShort, "frame length \(length) is shorter than the \(Wire.headerSize)-byte header")
        }
        let start = buffer.readerIndex + Wire.lengthPrefixSize
        guard let version = buffer.getInteger(at: start, as: UInt8.self) else { return nil }
        guard version == Wire.protocolVersion else {
            throw FrameError(.versionMismatch, "protocol version \(version), expected \(Wire.protocolVersion)")
        }
        guard let kindByte = buffer.getInteger(at: start + 1, as: UInt8.self) else { return nil }
        guard let kind = Wire.FrameKind(rawValue: kindByte) else {
            throw FrameError(.unknownKind, "unknown frame kind \(kindByte)")
        }
        guard buffer.readableBytes >= Wire.lengthPrefixSize + Int(length) else { return nil }
        let flags = buffer.getInteger(at: start + 2, as: UInt16.self)!
        let correlation = buffer.getInteger(at: start + 4, as: UInt64.self)!
        buffer.moveReaderIndex(forwardBy: Wire.lengthPrefixSize + Wire.headerSize)
        let body = buffer.readSlice(length: Int(length) - Wire.headerSize)!
        return Wire.Frame(
            kind: kind, flags: Wire.FrameFlags(rawValue: flags), correlationID: correlation, body: body)
    }
}
