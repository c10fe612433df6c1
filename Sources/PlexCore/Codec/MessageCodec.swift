internal import FoundationEssentials

/// Turns messages into bytes and back.
///
/// The node uses one codec for every actor payload that crosses the wire; calls between actors on the
/// same node pass values and use no codec at all. ``BinaryMessageCodec`` is the default;
/// ``JSONMessageCodec`` is there for tooling and comparison.
public protocol MessageCodec: Sendable {
    /// A short name, for logs and diagnostics.
    var name: String { get }
    /// Appends the encoding of `value` to `bytes`.
    /// - Throws: ``CallError`` with code `codecFailure`.
    func encode<T: Encodable>(_ value: T, into bytes: inout [UInt8]) throws
    /// Decodes a value from `bytes`, which must hold exactly one encoded value.
    /// - Throws: ``CallError`` with code `codecFailure`.
    func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T
}

extension MessageCodec {
    /// The encoding of `value` as a new array.
    public func encode<T: Encodable>(_ value: T) throws -> [UInt8] {
        var bytes: [UInt8] = []
        try encode(value, into: &bytes)
        return bytes
    }

    /// Decodes a value from an array of bytes.
    public func decode<T: Decodable>(_ type: T.Type, from bytes: [UInt8]) throws -> T {
        try bytes.withUnsafeBytes { try decode(type, from: $0) }
    }
}

/// JSON as Foundation's `JSONEncoder` (sorted keys, slashes unescaped) and `JSONDecoder` read and write it.
///
/// Readable and interoperable; the CLI and the gateway use JSON at the edge. Plain messages take fast paths
/// of our own (`JSONTreeEncoder`, `JSONTapeDecoder`; a request's round trip 2.2-2.5 times as fast as
/// Foundation's) that give the same bytes and values, and hand anything they cannot be sure of to Foundation, whose
/// output and errors then stand. Still slower than ``BinaryMessageCodec``.
public struct JSONMessageCodec: MessageCodec {
    public init() {}
    public var name: String { "json" }

    /// One encoder and decoder for every use: each encode or decode keeps its own state, and making them per
    /// message (an object, its options behind a lock) was a measurable share of a gateway call.
    private static let encoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]  // stable, readable output
        return encoder
    }()
    private static let decoder = JSONDecoder()

    /// Encodes with `JSONTreeEncoder` where it is sure to write Foundation's bytes, else with Foundation.
    public func encode<T: Encodable>(_ value: T, into bytes: inout [UInt8]) throws {
        if let fast = JSONTreeEncoder.encode(value) {
            bytes.append(contentsOf: fast)
            return
        }
        do {
            bytes.append(contentsOf: try Self.encoder.encode(value))
        } catch {
            throw CallError(.codecFailure, "cannot encode \(T.self) as JSON: \(error)")
        }
    }

    /// Decodes with `JSONTapeDecoder` where it is sure to decode as Foundation would, else with Foundation
    /// (whose error a malformed or mismatched text gets, as before).
    public func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T {
        if let value = try? JSONTapeDecoder.decode(T.self, from: bytes) { return value }
        do {
            return try Self.decoder.decode(T.self, from: Data(bytes))
        } catch {
            throw CallError(.codecFailure, "cannot decode \(T.self) from JSON: \(error)")
        }
    }
}
