internal import FoundationEssentials

/// ``JSONMessageCodec``'s fast path: decodes a ``JSONTape`` without Foundation, and gives up
/// (``JSONTape/NotFast``) wherever its answer could differ from `JSONDecoder`'s: a missing key, a type
/// mismatch, an integer written with a fraction or exponent or out of range, `Float`, and the types
/// `JSONDecoder` decodes its own way (`Data`, `Date`, `URL`, `Decimal`). The codec then decodes the text
/// with Foundation, whose value or error stands; a type's `init(from:)` may so run twice for one message.
///
/// Foundation's decoder costs about 3.5 µs for a two-field request, most of a gateway call's own work; this
/// one reads the text once into a flat tape and decodes from it.
final class JSONTapeDecoder: Decoder {
    let tape: JSONTape
    /// The node the current `init(from:)` decodes.
    var index = 0
    /// Set by every give-up, also one a type's own `init(from:)` catches (a `try?` that falls back to another
    /// type): the value it then makes could differ from Foundation's, so Foundation decodes it.
    private(set) var gaveUp = false
    /// Always empty here: a type that reads it gets Foundation's decoding, which has the real path.
    var codingPath: [any CodingKey] {
        gaveUp = true
        return []
    }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(tape: JSONTape) { self.tape = tape }

    /// Decodes `bytes` as `T`; throws ``JSONTape/NotFast`` if Foundation must.
    static func decode<T: Decodable>(_ type: T.Type, from bytes: UnsafeRawBufferPointer) throws -> T {
        let decoder = JSONTapeDecoder(tape: try JSONTape(bytes))
        let value = try decoder.decode(type, at: 0)
        guard !decoder.gaveUp else { throw JSONTape.NotFast() }
        return value
    }

    /// Gives up: Foundation decodes the message, whatever the type does with this error.
    func fail() -> JSONTape.NotFast {
        gaveUp = true
        return JSONTape.NotFast()
    }

    func node(_ index: Int) -> JSONTape.Node { tape.nodes[index] }

    func decode<T: Decodable>(_ type: T.Type, at index: Int) throws -> T {
        if T.self == Data.self || T.self == Date.self || T.self == URL.self || T.self == Decimal.self {
            throw fail()
        }
        let saved = self.index
        self.index = index
        defer { self.index = saved }
        return try T(from: self)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        KeyedDecodingContainer(try JSONTapeKeyed<Key>(decoder: self, object: index))
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try JSONTapeUnkeyed(decoder: self, array: index)
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer {
        JSONTapeSingleValue(decoder: self, index: index)
    }

    // MARK: Values

    func isNull(_ index: Int) -> Bool { node(index).kind == .null }

    func bool(_ index: Int) throws -> Bool {
        switch node(index).kind {
        case .true: return true
        case .false: return false
        default: throw fail()
        }
    }

    func string(_ index: Int) throws -> String {
        let node = node(index)
        switch node.kind {
        case .string: return tape.text(node.start..<node.end)
        case .escapedString:
            var bytes: [UInt8] = []
            bytes.reserveCapacity(node.end - node.start)
            var i = node.start
            while i < node.end {
                var b = tape.base[i]
                if b == UInt8(ascii: "\\") {
                    i += 1
                    guard let unescaped = JSONTape.unescaped(tape.base[i]) else { throw fail() }
                    b = unescaped
                }
                bytes.append(b)
                i += 1
            }
            return String(decoding: bytes, as: UTF8.self)
        default: throw fail()
        }
    }

    func integer<T: FixedWidthInteger>(_ type: T.Type, _ index: Int) throws -> T {
        let node = node(index)
        guard node.kind == .integer else { throw fail() }
        var i = node.start
        let negative = tape.base[i] == UInt8(ascii: "-")
        if negative { i += 1 }
        var magnitude: UInt64 = 0
        while i < node.end {
            let (times, overflow) = magnitude.multipliedReportingOverflow(by: 10)
            let (sum, carry) = times.addingReportingOverflow(UInt64(tape.base[i] &- UInt8(ascii: "0")))
            guard !overflow, !carry else { throw fail() }
            magnitude = sum
            i += 1
        }
        if negative {
            // "-0" and the most negative values are left to Foundation.
            guard magnitude > 0, magnitude <= UInt64(Int64.max), let value = T(exactly: -Int64(magnitude)) else {
                throw fail()
            }
            return value
        }
        guard let value = T(exactly: magnitude) else { throw fail() }
        return value
    }

    func double(_ index: Int) throws -> Double {
        let node = node(index)
        // Out of range either way (infinite, or a fraction that reads as zero) is Foundation's to decide.
        guard node.kind == .integer || node.kind == .number, let value = Double(tape.text(node.start..<node.end)),
            value.isFinite, value != 0 || node.kind == .integer
        else { throw fail() }
        return value
    }
}

struct JSONTapeKeyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let decoder: JSONTapeDecoder
    let object: Int
    var codingPath: [any CodingKey] { decoder.codingPath }

    init(decoder: JSONTapeDecoder, object: Int) throws {
        guard decoder.node(object).kind == .object else { throw decoder.fail() }
        self.decoder = decoder
        self.object = object
    }

    var allKeys: [Key] {
        var keys: [Key] = []
        var key = object + 1
        let end = decoder.node(object).next
        while key < end {
            let node = decoder.node(key)
            if let found = Key(stringValue: decoder.tape.text(node.start..<node.end)) { keys.append(found) }
            key = decoder.node(key + 1).next
        }
        // Keys that name one number ("1", "01"): which value Foundation keeps is its own business. (A closure, not
        // a key path: in this generic context a key path is built anew on every call, 8 % of a gateway call.)
        if keys.count > 1 {
            let numbers = keys.compactMap { $0.intValue }
            if numbers.count > 1, Set(numbers).count < numbers.count { _ = decoder.fail() }
        }
        return keys
    }

    /// The index of the value under `key`, or `nil`: a linear scan, as messages have few fields.
    private func find(_ key: Key) -> Int? {
        var name = key.stringValue
        return name.withUTF8 { wanted -> Int? in
            // Foundation compares keys as Swift strings, where a non-ASCII key can equal an ASCII one.
            guard wanted.allSatisfy({ $0 < 0x80 }) else {
                _ = decoder.fail()
                return nil
            }
            var at = object + 1
            let end = decoder.node(object).next
            while at < end {
                let node = decoder.node(at)
                if decoder.tape.equal(node.start..<node.end, wanted) { return at + 1 }
                at = decoder.node(at + 1).next
            }
            return nil
        }
    }

    /// The index of the value under `key`; a missing key is Foundation's to report.
    private func value(_ key: Key) throws -> Int {
        guard let at = find(key) else { throw decoder.fail() }
        return at
    }

    func contains(_ key: Key) -> Bool { find(key) != nil }
    func decodeNil(forKey key: Key) throws -> Bool { decoder.isNull(try value(key)) }
    func decode(_ type: Bool.Type, forKey key: Key) throws -> Bool { try decoder.bool(value(key)) }
    func decode(_ type: String.Type, forKey key: Key) throws -> String { try decoder.string(value(key)) }
    func decode(_ type: Double.Type, forKey key: Key) throws -> Double { try decoder.double(value(key)) }
    func decode(_ type: Float.Type, forKey key: Key) throws -> Float { throw decoder.fail() }
    func decode(_ type: Int.Type, forKey key: Key) throws -> Int { try decoder.integer(type, value(key)) }
    func decode(_ type: Int8.Type, forKey key: Key) throws -> Int8 { try decoder.integer(type, value(key)) }
    func decode(_ type: Int16.Type, forKey key: Key) throws -> Int16 { try decoder.integer(type, value(key)) }
    func decode(_ type: Int32.Type, forKey key: Key) throws -> Int32 { try decoder.integer(type, value(key)) }
    func decode(_ type: Int64.Type, forKey key: Key) throws -> Int64 { try decoder.integer(type, value(key)) }
    func decode(_ type: UInt.Type, forKey key: Key) throws -> UInt { try decoder.integer(type, value(key)) }
    func decode(_ type: UInt8.Type, forKey key: Key) throws -> UInt8 { try decoder.integer(type, value(key)) }
    func decode(_ type: UInt16.Type, forKey key: Key) throws -> UInt16 { try decoder.integer(type, value(key)) }
    func decode(_ type: UInt32.Type, forKey key: Key) throws -> UInt32 { try decoder.integer(type, value(key)) }
    func decode(_ type: UInt64.Type, forKey key: Key) throws -> UInt64 { try decoder.integer(type, value(key)) }
    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T { try decoder.decode(type, at: value(key)) }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let at = find(key), !decoder.isNull(at) else { return nil }
        return try decoder.decode(type, at: at)
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        KeyedDecodingContainer(try JSONTapeKeyed<NestedKey>(decoder: decoder, object: value(key)))
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try JSONTapeUnkeyed(decoder: decoder, array: value(key))
    }

    func superDecoder() throws -> any Decoder { throw decoder.fail() }
    func superDecoder(forKey key: Key) throws -> any Decoder { throw decoder.fail() }
}

struct JSONTapeUnkeyed: UnkeyedDecodingContainer {
    let decoder: JSONTapeDecoder
    private let end: Int
    private var at: Int
    let count: Int?
    private(set) var currentIndex = 0
    var codingPath: [any CodingKey] { decoder.codingPath }

    init(decoder: JSONTapeDecoder, array: Int) throws {
        let node = decoder.node(array)
        guard node.kind == .array else { throw decoder.fail() }
        self.decoder = decoder
        self.end = node.next
        self.at = array + 1
        self.count = node.count
    }

    var isAtEnd: Bool { at >= end }

    /// The index of the next value; advances past it. Reading past the end is Foundation's to report.
    private mutating func next() throws -> Int {
        guard at < end else { throw decoder.fail() }
        let value = at
        at = decoder.node(at).next
        currentIndex += 1
        return value
    }

    mutating func decodeNil() throws -> Bool {
        guard at < end else { throw decoder.fail() }  // Foundation throws at the end
        guard decoder.isNull(at) else { return false }
        _ = try next()
        return true
    }

    mutating func decode(_ type: Bool.Type) throws -> Bool { try decoder.bool(next()) }
    mutating func decode(_ type: String.Type) throws -> String { try decoder.string(next()) }
    mutating func decode(_ type: Double.Type) throws -> Double { try decoder.double(next()) }
    mutating func decode(_ type: Float.Type) throws -> Float { throw decoder.fail() }
    mutating func decode(_ type: Int.Type) throws -> Int { try decoder.integer(type, next()) }
    mutating func decode(_ type: Int8.Type) throws -> Int8 { try decoder.integer(type, next()) }
    mutating func decode(_ type: Int16.Type) throws -> Int16 { try decoder.integer(type, next()) }
    mutating func decode(_ type: Int32.Type) throws -> Int32 { try decoder.integer(type, next()) }
    mutating func decode(_ type: Int64.Type) throws -> Int64 { try decoder.integer(type, next()) }
    mutating func decode(_ type: UInt.Type) throws -> UInt { try decoder.integer(type, next()) }
    mutating func decode(_ type: UInt8.Type) throws -> UInt8 { try decoder.integer(type, next()) }
    mutating func decode(_ type: UInt16.Type) throws -> UInt16 { try decoder.integer(type, next()) }
    mutating func decode(_ type: UInt32.Type) throws -> UInt32 { try decoder.integer(type, next()) }
    mutating func decode(_ type: UInt64.Type) throws -> UInt64 { try decoder.integer(type, next()) }
    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decode(type, at: next()) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws
        -> KeyedDecodingContainer<NestedKey>
    {
        KeyedDecodingContainer(try JSONTapeKeyed<NestedKey>(decoder: decoder, object: next()))
    }

    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer {
        try JSONTapeUnkeyed(decoder: decoder, array: next())
    }

    mutating func superDecoder() throws -> any Decoder { throw decoder.fail() }
}

struct JSONTapeSingleValue: SingleValueDecodingContainer {
    let decoder: JSONTapeDecoder
    let index: Int
    var codingPath: [any CodingKey] { decoder.codingPath }

    func decodeNil() -> Bool { decoder.isNull(index) }
    func decode(_ type: Bool.Type) throws -> Bool { try decoder.bool(index) }
    func decode(_ type: String.Type) throws -> String { try decoder.string(index) }
    func decode(_ type: Double.Type) throws -> Double { try decoder.double(index) }
    func decode(_ type: Float.Type) throws -> Float { throw decoder.fail() }
    func decode(_ type: Int.Type) throws -> Int { try decoder.integer(type, index) }
    func decode(_ type: Int8.Type) throws -> Int8 { try decoder.integer(type, index) }
    func decode(_ type: Int16.Type) throws -> Int16 { try decoder.integer(type, index) }
    func decode(_ type: Int32.Type) throws -> Int32 { try decoder.integer(type, index) }
    func decode(_ type: Int64.Type) throws -> Int64 { try decoder.integer(type, index) }
    func decode(_ type: UInt.Type) throws -> UInt { try decoder.integer(type, index) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try decoder.integer(type, index) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try decoder.integer(type, index) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try decoder.integer(type, index) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try decoder.integer(type, index) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try decoder.decode(type, at: index) }
}
