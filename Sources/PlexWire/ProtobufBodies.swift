public import NIOCore
public import SwiftProtobuf

extension Wire {
    /// Encodes a control-plane message as a frame body.
    public static func body(_ message: some SwiftProtobuf.Message) -> ByteBuffer {
        // Serialising a well-formed message into bytes cannot fail for the proto3 types we define.
        let bytes: [UInt8] = (try? message.serializedBytes()) ?? []
        return ByteBuffer(bytes: bytes)
    }

    /// Decodes a control-plane message from a frame body.
    /// - Throws: ``FrameError`` with code `malformedBody`.
    public static func decode<M: SwiftProtobuf.Message>(_ type: M.Type, from body: ByteBuffer) throws -> M {
        do {
            return try body.withUnsafeReadableBytes { try M(serializedBytes: Array($0)) }
        } catch {
            throw FrameError(.malformedBody, "body of \(M.protoMessageName) does not decode: \(error)")
        }
    }
}
