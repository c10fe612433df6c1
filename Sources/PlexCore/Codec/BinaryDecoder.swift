internal import FoundationEssentials

/// Reads ``BinaryMessageCodec``'s format from a borrowed buffer, without building a tree.
///
/// Every read is bounds-checked; malformed input throws `DecodingError.dataCorrupted`.
final class BinaryDecoderState {
    let base: UnsafeRawBufferPointer
    /// Where the value that the current `Decodable.init(from:)` decodes starts.
    @exclusivity(unchecked) var position = 0

    init(base: UnsafeRawBufferPointer) { self.base = base }

    func corrupted(_ what: String) -> DecodingError {
        .dataCorrupted(.init(codingPath: [], debugDescription: what))
    }

    @inline(__always) func byte(at offset: Int) throws -> UInt8 {
        guard offset < base.count else { throw corrupted("unexpected end of input at byte \(offset)") }
        return base[offset]
    }

    @inline(__always) func varint(at offset: inout Int) throws -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            let b = try byte(at: offset)
            offset += 1
            result |= UInt64(b & 0x7F) << shift
            if b < 0x80 { return result }
            shift += 7
            guard shift < 64 else { throw corrupted("varint longer than 10 bytes at byte \(offset)") }
        }
    }

    /// Reads a length and checks that the bytes it announces are there; returns the body's range.
    @inline(__always) func lengthPrefixed(at offset: inout Int) throws -> Range<Int> {
        let length = try varint(at: &offset)
        guard length <= UInt64(base.count - offset) else {
            throw corrupted("length \(length) at byte \(offset) runs past the end")
        }
        let range = offset..<(offset + Int(length))
        offset = range.upperBound
        return range
    }

    /// The offset just past the value at `offset`.
    func skip(at offset: Int) throws -> Int {
        var o = offset + 1
        switch try byte(at: offset) {
        case BinaryTag.null, BinaryTag.false, BinaryTag.true: return o
        case BinaryTag.signed, BinaryTag.unsigned:
            _ = try varint(at: &o)
            return o
        case BinaryTag.double: o += 8
        case BinaryTag.float: o += 4
        case BinaryTag.string, BinaryTag.bytes, BinaryTag.keyed, BinaryTag.unkeyed:
            _ = try lengthPrefixed(at: &o)
            return o
        case let tag: throw corrupted("unknown tag \(tag) at byte \(offset)")
        }
        guard o <= base.count else { throw corrupted("unexpected end of input at byte \(offset)") }
        return o
    }

    // MARK: Values at an offset

    func isNil(at offset: Int) throws -> Bool { try byte(at: offset) == BinaryTag.null }

    func bool(at offset: Int) throws -> Bool {
        switch try byte(at: offset) {
        case BinaryTag.true: return true
        case BinaryTag.false: return false
        case let tag: throw mismatch(Bool.self, tag, offset)
        }
    }

    func integer<T: FixedWidthInteger>(_ type: T.Type, at offset: Int) throws -> T {
        var o = offset + 1
        let tag = try byte(at: offset)
        let value: T?
        switch tag {
        case BinaryTag.signed: value = T(exactly: unzigzag(try varint(at: &o)))
        case BinaryTag.unsigned: value = T(exactly: try varint(at: &o))
        default: throw mismatch(T.self, tag, offset)
        }
        guard let value else { throw corrupted("integer at byte \(offset) does not fit \(T.self)") }
        return value
    }

    func double(at offset: Int) throws -> Double {
        switch try byte(at: offset) {
        case BinaryTag.double:
            guard offset + 9 <= base.count else { throw corrupted("truncated Double at byte \(offset)") }
            return Double(
                bitPattern: UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset + 1, as: UInt64.self)))
        case BinaryTag.float: return Double(try float(at: offset))
        case BinaryTag.signed, BinaryTag.unsigned: return Double(try integer(Int64.self, at: offset))
        case let tag: throw mismatch(Double.self, tag, offset)
        }
    }

    func float(at offset: Int) throws -> Float {
        switch try byte(at: offset) {
        case BinaryTag.float:
            guard offset + 5 <= base.count else { throw corrupted("truncated Float at byte \(offset)") }
            return Float(
                bitPattern: UInt32(littleEndian: base.loadUnaligned(fromByteOffset: offset + 1, as: UInt32.self)))
        case BinaryTag.double: return Float(try double(at: offset))
        case let tag: throw mismatch(Float.self, tag, offset)
        }
    }

    func string(at offset: Int) throws -> String {
        let tag = try byte(at: offset)
        guard tag == BinaryTag.string else { throw mismatch(String.self, tag, offset) }
        var o = offset + 1
        let range = try lengthPrefixed(at: &o)
        return String(decoding: UnsafeRawBufferPointer(rebasing: base[range]), as: UTF8.self)
    }

    func bytes(at offset: Int) throws -> UnsafeRawBufferPointer {
        let tag = try byte(at: offset)
        guard tag == BinaryTag.bytes else { throw mismatch([UInt8].self, tag, offset) }
        var o = offset + 1
        let range = try lengthPrefixed(at: &o)
        return UnsafeRawBufferPointer(rebasing: base[range])
    }

    /// The body range of the container with `tag` at `offset`.
    func container(_ tag: UInt8, at offset: Int) throws -> Range<Int> {
        let found = try byte(at: offset)
        guard found == tag else {
            throw corrupted(
                "expected a \(tag == BinaryTag.keyed ? "keyed" : "unkeyed") container at byte \(offset), found tag \(found)"
            )
        }
        var o = offset + 1
        return try lengthPrefixed(at: &o)
    }

    func decode<T: Decodable>(_ type: T.Type, at offset: Int, decoder: BinaryDecoder) throws -> T {
        if T.self == [UInt8].self { return Array(try bytes(at: offset)) as! T }
        if T.self == Data.self { return Data(try bytes(at: offset)) as! T }
        let saved = position
        position = offset
        defer { position = saved }
        return try T(from: decoder)
    }

    private func mismatch(_ type: Any.Type, _ tag: UInt8, _ offset: Int) -> DecodingError {
        .typeMismatch(type, .init(codingPath: [], debugDescription: "found tag \(tag) at byte \(offset)"))
    }
}

/// The `Decoder` of ``BinaryMessageCodec``. One instance serves a whole value tree.
final class BinaryDecoder: Decoder {
    let state: BinaryDecoderState
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(state: BinaryDecoderState) { self.state = state }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        let body = try state.container(BinaryTag.keyed, at: state.position)
        return KeyedDecodingContainer(BinaryKeyedDecoding<Key>(decoder: self, body: body))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        let body = try state.container(BinaryTag.unkeyed, at: state.position)
        return BinaryUnkeyedDecoding(decoder: self, body: body)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        BinarySingleValueDecoding(decoder: self, offset: state.position)
    }
}

struct BinaryKeyedDecoding<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: BinaryDecoder
    let body: Range<Int>
    var codingPath: [any CodingKey] { [] }
    private var state: BinaryDecoderState { decoder.state }

    init(decoder: BinaryDecoder, body: Range<Int>) {
        self.decoder = decoder
        self.body = body
    }

    var allKeys: [Key] {
        var keys: [Key] = []
        var o = body.lowerBound
        while o < body.upperBound {
            guard let range = try? state.lengthPrefixed(at: &o), let next = try? state.skip(at: o) else { break }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: state.base[range]), as: UTF8.self)
            if let key = Key(stringValue: text) { keys.append(key) }
            o = next
        }
        return keys
    }

    /// The offset of the value stored under `key`, or `nil`.
    ///
    /// A linear scan: messages have few fields, and a scan allocates nothing (a cursor would need the
    /// container to be a class, one allocation per container).
    private func find(_ key: Key) throws -> Int? {
        var text = key.stringValue
        return try text.withUTF8 { wanted -> Int? in
            var o = body.lowerBound
            while o < body.upperBound {
                let range = try state.lengthPrefixed(at: &o)
                let valueAt = o
                o = try state.skip(at: valueAt)
                guard o <= body.upperBound else { throw state.corrupted("entry runs past its container") }
                if range.count == wanted.count
                    && memoryEqual(state.base.baseAddress! + range.lowerBound, wanted.baseAddress!, wanted.count)
                {
                    return valueAt
                }
            }
            return nil
        }
    }

    private func offset(_ key: Key) throws -> Int {
        guard let at = try find(key) else {
            throw DecodingError.keyNotFound(
                key, .init(codingPath: [], debugDescription: "no value for key '\(key.stringValue)'"))
        }
        return at
    }

    func contains(_ key: Key) -> Bool {
        (try? find(key)) != nil
    }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard let at = try find(key) else { return true }
        return try state.isNil(at: at)
    }

    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try state.bool(at: offset(key)) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try state.string(at: offset(key)) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try state.double(at: offset(key)) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { try state.float(at: offset(key)) }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try state.integer(type, at: offset(key)) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try state.integer(type, at: offset(key)) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try state.integer(type, at: offset(key)) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try state.integer(type, at: offset(key)) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try state.integer(type, at: offset(key)) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try state.integer(type, at: offset(key)) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try state.integer(type, at: offset(key)) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try state.integer(type, at: offset(key)) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try state.integer(type, at: offset(key)) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try state.integer(type, at: offset(key)) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        try state.decode(type, at: offset(key), decoder: decoder)
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let at = try find(key), try !state.isNil(at: at) else { return nil }
        return try state.decode(type, at: at, decoder: decoder)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        let body = try state.container(BinaryTag.keyed, at: offset(key))
        return KeyedDecodingContainer(BinaryKeyedDecoding<NestedKey>(decoder: decoder, body: body))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        BinaryUnkeyedDecoding(decoder: decoder, body: try state.container(BinaryTag.unkeyed, at: offset(key)))
    }

    func superDecoder() throws -> any Decoder {
        try superDecoder(forKey: Key(stringValue: "super")!)
    }

    func superDecoder(forKey key: Key) throws -> any Decoder {
        let at = try offset(key)
        let nested = BinaryDecoder(state: BinaryDecoderState(base: state.base))
        nested.state.position = at
        return nested
    }
}

struct BinaryUnkeyedDecoding: UnkeyedDecodingContainer {
    let decoder: BinaryDecoder
    let body: Range<Int>
    private var position: Int
    private(set) var currentIndex = 0
    var codingPath: [any CodingKey] { [] }
    private var state: BinaryDecoderState { decoder.state }

    init(decoder: BinaryDecoder, body: Range<Int>) {
        self.decoder = decoder
        self.body = body
        self.position = body.lowerBound
    }

    var count: Int? {
        var n = 0
        var o = body.lowerBound
        while o < body.upperBound {
            guard let next = try? state.skip(at: o) else { return nil }
            o = next
            n += 1
        }
        return n
    }

    var isAtEnd: Bool { position >= body.upperBound }

    /// The offset of the next value; advances past it.
    @inline(__always) private mutating func next() throws -> Int {
        guard position < body.upperBound else {
            throw DecodingError.valueNotFound(
                Any.self, .init(codingPath: [], debugDescription: "unkeyed container is at its end"))
        }
        let at = position
        position = try state.skip(at: at)
        guard position <= body.upperBound else { throw state.corrupted("value runs past its container") }
        currentIndex += 1
        return at
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, try state.isNil(at: position) else { return false }
        _ = try next()
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try state.bool(at: next()) }
    mutating func decode(_ type: String.Type) throws -> String { try state.string(at: next()) }
    mutating func decode(_ type: Double.Type) throws -> Double { try state.double(at: next()) }
    mutating func decode(_ type: Float.Type) throws -> Float { try state.float(at: next()) }
    mutating func decode(_ type: Int.Type) throws -> Int { try state.integer(type, at: next()) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try state.integer(type, at: next()) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try state.integer(type, at: next()) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try state.integer(type, at: next()) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try state.integer(type, at: next()) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try state.integer(type, at: next()) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try state.integer(type, at: next()) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try state.integer(type, at: next()) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try state.integer(type, at: next()) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try state.integer(type, at: next()) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T {
        try state.decode(type, at: next(), decoder: decoder)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        let body = try state.container(BinaryTag.keyed, at: next())
        return KeyedDecodingContainer(BinaryKeyedDecoding<NestedKey>(decoder: decoder, body: body))
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        BinaryUnkeyedDecoding(decoder: decoder, body: try state.container(BinaryTag.unkeyed, at: next()))
    }

    mutating func superDecoder() throws -> any Decoder {
        let nested = BinaryDecoder(state: BinaryDecoderState(base: state.base))
        nested.state.position = try next()
        return nested
    }
}

struct BinarySingleValueDecoding: SingleValueDecodingContainer {
    let decoder: BinaryDecoder
    let offset: Int
    var codingPath: [any CodingKey] { [] }
    private var state: BinaryDecoderState { decoder.state }

    init(decoder: BinaryDecoder, offset: Int) {
        self.decoder = decoder
        self.offset = offset
    }

    func decodeNil() -> Bool { (try? state.isNil(at: offset)) ?? false }
    func decode(_ type: Bool.Type) throws -> Bool { try state.bool(at: offset) }
    func decode(_ type: String.Type) throws -> String { try state.string(at: offset) }
    func decode(_ type: Double.Type) throws -> Double { try state.double(at: offset) }
    func decode(_ type: Float.Type) throws -> Float { try state.float(at: offset) }
    func decode(_ type: Int.Type) throws -> Int { try state.integer(type, at: offset) }
    func decode(_ type: Int8.Type) throws -> Int8 { try state.integer(type, at: offset) }
    func decode(_ type: Int16.Type) throws -> Int16 { try state.integer(type, at: offset) }
    func decode(_ type: Int32.Type) throws -> Int32 { try state.integer(type, at: offset) }
    func decode(_ type: Int64.Type) throws -> Int64 { try state.integer(type, at: offset) }
    func decode(_ type: UInt.Type) throws -> UInt { try state.integer(type, at: offset) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try state.integer(type, at: offset) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try state.integer(type, at: offset) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try state.integer(type, at: offset) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try state.integer(type, at: offset) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T {
        // A wrapper that decodes its inner value through a single-value container: same offset.
        if T.self == [UInt8].self { return Array(try state.bytes(at: offset)) as! T }
        if T.self == Data.self { return Data(try state.bytes(at: offset)) as! T }
        return try T(from: decoder)
    }
}

/// The default codec: a compact, tagged binary form of `Codable`, written and read in one pass.
///
/// See the format table on `BinaryTag`. Keys are kept, so fields can be added or reordered across
/// versions the way `Codable` allows; integers are varints, so small numbers take one or two bytes.
public struct BinaryMessageCodec: MessageCodec {
    public init() {}
    public var name: String { "binary" }

    public func encode<T: Encodable>(_ value: T, into bytes: inout [UInt8]) throws {
        let state = BinaryEncoderState(bytes: bytes)
        bytes = []
        do {
            try state.write(value, encoder: BinaryEncoder(state: state))
        } catch {
            throw CallError(.codecFailure, "cannot encode \(T.self): \(error)")
        }
        bytes = state.bytes
    }

    public func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T {
        let state = BinaryDecoderState(base: bytes)
        do {
            guard !bytes.isEmpty else { throw state.corrupted("empty input") }
            let end = try state.skip(at: 0)
            guard end == bytes.count else {
                throw state.corrupted("\(bytes.count - end) trailing bytes after the value")
            }
            return try state.decode(type, at: 0, decoder: BinaryDecoder(state: state))
        } catch let error as CallError {
            throw error
        } catch {
            throw CallError(.codecFailure, "cannot decode \(T.self): \(error)")
        }
    }
}

@inline(__always)
private func memoryEqual(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ count: Int) -> Bool {
    var i = 0
    while i < count {
        if a.load(fromByteOffset: i, as: UInt8.self) != b.load(fromByteOffset: i, as: UInt8.self) { return false }
        i += 1
    }
    return true
}
