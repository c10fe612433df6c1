internal import FoundationEssentials

/// ``JSONMessageCodec``'s fast path for encoding: builds a small tree of the value and writes it as
/// `JSONEncoder` does with `[.sortedKeys, .withoutEscapingSlashes]`, byte for byte, or gives up wherever its
/// output could differ: a non-finite `Double` or `Float` (Foundation throws), the types `JSONEncoder`
/// encodes its own way (`Data`, `Date`, `URL`, `Decimal`), a non-ASCII key, a key written twice, a container
/// asked for twice of one encoder, `superEncoder`, a value that encodes nothing at the top. The codec then
/// encodes with Foundation; a type's `encode(to:)` may so run twice for one message.
///
/// `JSONFastPathTests` compares both encoders' bytes over the shapes requests and replies take.
struct JSONTreeEncoder: Encoder {
    /// A written value: a scalar, or a container's node.
    enum Value {
        case null
        case bool(Bool)
        case signed(Int64)
        case unsigned(UInt64)
        /// A `Double` or `Float`, written.
        case number(String)
        case string(String)
        case node(Node)
    }

    /// A value being encoded.
    final class Node {
        enum Shape { case unset, object, array, single }
        var shape = Shape.unset
        var members: [(key: String, value: Value)] = []
        var elements: [Value] = []
        var single: Value?
    }

    /// Set when the fast path cannot be sure of its output (containers cannot throw, so they note it here).
    final class Outcome {
        var givenUp = false
    }

    let node: Node
    let outcome: Outcome
    /// Always empty here: a type that reads it gets Foundation's encoding, which has the real path.
    var codingPath: [any CodingKey] {
        outcome.givenUp = true
        return []
    }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(node: Node, outcome: Outcome) {
        self.node = node
        self.outcome = outcome
    }

    /// `value`'s JSON, or `nil` when Foundation must encode it.
    static func encode<T: Encodable>(_ value: T) -> [UInt8]? {
        let outcome = Outcome()
        guard let root = try? Self.value(of: value, outcome: outcome, top: true), !outcome.givenUp else { return nil }
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        guard write(root, into: &bytes) else { return nil }
        return bytes
    }

    /// Encodes `value` into a node of its own; a scalar comes back as itself.
    static func value<T: Encodable>(of value: T, outcome: Outcome, top: Bool = false) throws -> Value {
        if T.self == Data.self || T.self == Date.self || T.self == URL.self || T.self == Decimal.self {
            outcome.givenUp = true
            return .null
        }
        let node = Node()
        try value.encode(to: JSONTreeEncoder(node: node, outcome: outcome))
        switch node.shape {
        case .single:
            guard let single = node.single else {
                outcome.givenUp = true
                return .null
            }
            return single
        case .unset:
            // Nested, Foundation writes an empty object; at the top it throws.
            if top { outcome.givenUp = true }
            node.shape = .object
            return .node(node)
        case .object, .array: return .node(node)
        }
    }

    /// Marks the node as `shape`; a second container of one encoder gives up.
    private func claim(_ shape: Node.Shape) {
        if node.shape == .unset { node.shape = shape } else { outcome.givenUp = true }
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        claim(.object)
        return KeyedEncodingContainer(JSONTreeKeyed<Key>(node: node, outcome: outcome))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        claim(.array)
        return JSONTreeUnkeyed(node: node, outcome: outcome)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        claim(.single)
        return JSONTreeSingleValue(node: node, outcome: outcome)
    }

    /// A finite number as Foundation writes it: Swift's shortest round-trip form without a trailing `.0`
    /// (`1`, `0.1`, `1e+20`, `-0`; checked against `JSONEncoder` over 300,000 random doubles and 100,000
    /// floats); `nil` for infinity and NaN, which Foundation refuses.
    static func number<F: BinaryFloatingPoint & LosslessStringConvertible>(_ value: F) -> Value? {
        guard value.isFinite else { return nil }
        var text = value.description
        if text.hasSuffix(".0") { text.removeLast(2) }
        return .number(text)
    }

    // MARK: Writing

    /// Writes `value` as Foundation would; `false` where it cannot be sure to.
    static func write(_ value: Value, into bytes: inout [UInt8]) -> Bool {
        switch value {
        case .null: bytes.append(contentsOf: "null".utf8)
        case .bool(let flag): bytes.append(contentsOf: (flag ? "true" : "false").utf8)
        case .signed(let number): bytes.append(contentsOf: String(number).utf8)
        case .unsigned(let number): bytes.append(contentsOf: String(number).utf8)
        case .number(let text): bytes.append(contentsOf: text.utf8)
        case .string(let text): writeString(text, into: &bytes)
        case .node(let node):
            switch node.shape {
            case .array:
                bytes.append(UInt8(ascii: "["))
                for (i, element) in node.elements.enumerated() {
                    if i > 0 { bytes.append(UInt8(ascii: ",")) }
                    guard write(element, into: &bytes) else { return false }
                }
                bytes.append(UInt8(ascii: "]"))
            case .object, .unset:
                // Foundation sorts keys by their UTF-8 bytes; only ASCII keys, which sort the same either way.
                guard node.members.allSatisfy({ $0.key.utf8.allSatisfy { $0 < 0x80 } }) else { return false }
                let members = node.members.sorted { $0.key.utf8.lexicographicallyPrecedes($1.key.utf8) }
                bytes.append(UInt8(ascii: "{"))
                for (i, member) in members.enumerated() {
                    if i > 0 {
                        guard member.key != members[i - 1].key else { return false }  // Foundation keeps the last
                        bytes.append(UInt8(ascii: ","))
                    }
                    writeString(member.key, into: &bytes)
                    bytes.append(UInt8(ascii: ":"))
                    guard write(member.value, into: &bytes) else { return false }
                }
                bytes.append(UInt8(ascii: "}"))
            case .single:
                guard let single = node.single else { return false }
                return write(single, into: &bytes)
            }
        }
        return true
    }

    /// A JSON string as Foundation writes it: `"` and `\` escaped, control characters as `\b \t \n \f \r` or
    /// `\u00xx`, everything else (`/`, DEL, non-ASCII) as it is.
    static func writeString(_ text: String, into bytes: inout [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), byte])
            case 0x08: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "b")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0C: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "f")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                bytes.append(contentsOf: [
                    UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0"), hex[Int(byte >> 4)],
                    hex[Int(byte & 0xF)],
                ])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}

struct JSONTreeKeyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: JSONTreeEncoder.Node
    let outcome: JSONTreeEncoder.Outcome
    var codingPath: [any CodingKey] {
        outcome.givenUp = true
        return []
    }

    private func add(_ value: JSONTreeEncoder.Value, _ key: Key) {
        node.members.append((key.stringValue, value))
    }

    private func givingUp() { outcome.givenUp = true }

    mutating func encodeNil(forKey key: Key) throws { add(.null, key) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { add(.bool(value), key) }
    mutating func encode(_ value: String, forKey key: Key) throws { add(.string(value), key) }
    mutating func encode(_ value: Double, forKey key: Key) throws { number(value, key) }
    mutating func encode(_ value: Float, forKey key: Key) throws { number(value, key) }

    private func number<F: BinaryFloatingPoint & LosslessStringConvertible>(_ value: F, _ key: Key) {
        guard let number = JSONTreeEncoder.number(value) else { return givingUp() }
        add(number, key)
    }
    mutating func encode(_ value: Int, forKey key: Key) throws { add(.signed(Int64(value)), key) }
    mutating func encode(_ value: Int8, forKey key: Key) throws { add(.signed(Int64(value)), key) }
    mutating func encode(_ value: Int16, forKey key: Key) throws { add(.signed(Int64(value)), key) }
    mutating func encode(_ value: Int32, forKey key: Key) throws { add(.signed(Int64(value)), key) }
    mutating func encode(_ value: Int64, forKey key: Key) throws { add(.signed(value), key) }
    mutating func encode(_ value: UInt, forKey key: Key) throws { add(.unsigned(UInt64(value)), key) }
    mutating func encode(_ value: UInt8, forKey key: Key) throws { add(.unsigned(UInt64(value)), key) }
    mutating func encode(_ value: UInt16, forKey key: Key) throws { add(.unsigned(UInt64(value)), key) }
    mutating func encode(_ value: UInt32, forKey key: Key) throws { add(.unsigned(UInt64(value)), key) }
    mutating func encode(_ value: UInt64, forKey key: Key) throws { add(.unsigned(value), key) }
    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        add(try JSONTreeEncoder.value(of: value, outcome: outcome), key)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        let nested = JSONTreeEncoder.Node()
        nested.shape = .object
        add(.node(nested), key)
        return KeyedEncodingContainer(JSONTreeKeyed<NestedKey>(node: nested, outcome: outcome))
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let nested = JSONTreeEncoder.Node()
        nested.shape = .array
        add(.node(nested), key)
        return JSONTreeUnkeyed(node: nested, outcome: outcome)
    }

    mutating func superEncoder() -> any Encoder {
        givingUp()
        return JSONTreeEncoder(node: JSONTreeEncoder.Node(), outcome: outcome)
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder { superEncoder() }
}

struct JSONTreeUnkeyed: UnkeyedEncodingContainer {
    let node: JSONTreeEncoder.Node
    let outcome: JSONTreeEncoder.Outcome
    var codingPath: [any CodingKey] {
        outcome.givenUp = true
        return []
    }
    var count: Int { node.elements.count }

    private func add(_ value: JSONTreeEncoder.Value) { node.elements.append(value) }
    private func givingUp() { outcome.givenUp = true }

    mutating func encodeNil() throws { add(.null) }
    mutating func encode(_ value: Bool) throws { add(.bool(value)) }
    mutating func encode(_ value: String) throws { add(.string(value)) }
    mutating func encode(_ value: Double) throws { number(value) }
    mutating func encode(_ value: Float) throws { number(value) }

    private func number<F: BinaryFloatingPoint & LosslessStringConvertible>(_ value: F) {
        guard let number = JSONTreeEncoder.number(value) else { return givingUp() }
        add(number)
    }
    mutating func encode(_ value: Int) throws { add(.signed(Int64(value))) }
    mutating func encode(_ value: Int8) throws { add(.signed(Int64(value))) }
    mutating func encode(_ value: Int16) throws { add(.signed(Int64(value))) }
    mutating func encode(_ value: Int32) throws { add(.signed(Int64(value))) }
    mutating func encode(_ value: Int64) throws { add(.signed(value)) }
    mutating func encode(_ value: UInt) throws { add(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt8) throws { add(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt16) throws { add(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt32) throws { add(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt64) throws { add(.unsigned(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        add(try JSONTreeEncoder.value(of: value, outcome: outcome))
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type)
        -> KeyedEncodingContainer<NestedKey>
    {
        let nested = JSONTreeEncoder.Node()
        nested.shape = .object
        add(.node(nested))
        return KeyedEncodingContainer(JSONTreeKeyed<NestedKey>(node: nested, outcome: outcome))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let nested = JSONTreeEncoder.Node()
        nested.shape = .array
        add(.node(nested))
        return JSONTreeUnkeyed(node: nested, outcome: outcome)
    }

    mutating func superEncoder() -> any Encoder {
        givingUp()
        return JSONTreeEncoder(node: JSONTreeEncoder.Node(), outcome: outcome)
    }
}

struct JSONTreeSingleValue: SingleValueEncodingContainer {
    let node: JSONTreeEncoder.Node
    let outcome: JSONTreeEncoder.Outcome
    var codingPath: [any CodingKey] {
        outcome.givenUp = true
        return []
    }

    private func set(_ value: JSONTreeEncoder.Value) {
        if node.single != nil { outcome.givenUp = true }
        node.single = value
    }

    mutating func encodeNil() throws { set(.null) }
    mutating func encode(_ value: Bool) throws { set(.bool(value)) }
    mutating func encode(_ value: String) throws { set(.string(value)) }
    mutating func encode(_ value: Double) throws { number(value) }
    mutating func encode(_ value: Float) throws { number(value) }

    private func number<F: BinaryFloatingPoint & LosslessStringConvertible>(_ value: F) {
        guard let number = JSONTreeEncoder.number(value) else { return outcome.givenUp = true }
        set(number)
    }
    mutating func encode(_ value: Int) throws { set(.signed(Int64(value))) }
    mutating func encode(_ value: Int8) throws { set(.signed(Int64(value))) }
    mutating func encode(_ value: Int16) throws { set(.signed(Int64(value))) }
    mutating func encode(_ value: Int32) throws { set(.signed(Int64(value))) }
    mutating func encode(_ value: Int64) throws { set(.signed(value)) }
    mutating func encode(_ value: UInt) throws { set(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt8) throws { set(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt16) throws { set(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt32) throws { set(.unsigned(UInt64(value))) }
    mutating func encode(_ value: UInt64) throws { set(.unsigned(value)) }
    mutating func encode<T: Encodable>(_ value: T) throws {
        set(try JSONTreeEncoder.value(of: value, outcome: outcome))
    }
}
