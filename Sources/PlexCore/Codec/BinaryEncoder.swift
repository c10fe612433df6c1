internal import FoundationEssentials

/// Writes ``BinaryMessageCodec``'s format in one pass, straight into a byte array.
///
/// Containers are written as they are created: a container's length is patched in when the next write
/// to an enclosing container (or the end of the value) closes it. That matches how synthesized and
/// hand-written `Encodable` conformances behave; writing to a container after a later sibling was
/// started is an error (`EncodingError.invalidValue`), never silent corruption.
///
/// The state is only touched by the one encoding call that owns it, so its properties opt out of dynamic
/// exclusivity checks (`@exclusivity(unchecked)`): those checks were a fifth of the encoder's time.
final class BinaryEncoderState {
    @exclusivity(unchecked) var bytes: [UInt8]
    /// Open containers, innermost last: the index of each one's length byte and its serial number.
    @exclusivity(unchecked) private var open: [(lengthAt: Int, serial: Int)] = []
    @exclusivity(unchecked) private var nextSerial = 0
    /// The container the current value's encoder already handed out, if any.
    @exclusivity(unchecked) var currentValueContainer: (depth: Int, serial: Int)?

    init(bytes: [UInt8]) {
        self.bytes = bytes
        // Not more: encoded values are often kept (a step's result), with their capacity.
        self.bytes.reserveCapacity(64)
        // One allocation (growing from empty took three for a workflow's steps).
        open.reserveCapacity(8)
    }

    var depth: Int { open.count }

    /// Closes containers deeper than `depth` and checks that the container (`depth`, `serial`) is open.
    @inline(__always)
    func prepareWrite(depth: Int, serial: Int) throws {
        if open.count > depth { close(downTo: depth) }
        guard depth == 0 || (open.count == depth && open[depth - 1].serial == serial) else {
            throw EncodingError.invalidValue(
                serial,
                .init(codingPath: [], debugDescription: "a container was written after a later sibling started"))
        }
    }

    /// Opens a container with `tag`; returns its depth and serial.
    func openContainer(tag: UInt8) -> (depth: Int, serial: Int) {
        bytes.append(tag)
        bytes.append(0)
        nextSerial += 1
        open.append((bytes.count - 1, nextSerial))
        return (open.count, nextSerial)
    }

    func close(downTo depth: Int) {
        while open.count > depth {
            let lengthAt = open.removeLast().lengthAt
            let length = bytes.count - lengthAt - 1
            if length < 0x80 {
                bytes[lengthAt] = UInt8(length)
            } else {
                var prefix: [UInt8] = []
                appendVarint(UInt64(length), to: &prefix)
                bytes[lengthAt] = prefix[0]
                bytes.insert(contentsOf: prefix[1...], at: lengthAt + 1)
            }
        }
    }

    // MARK: Values

    @inline(__always) func writeNil() { bytes.append(BinaryTag.null) }
    @inline(__always) func write(_ value: Bool) { bytes.append(value ? BinaryTag.true : BinaryTag.false) }

    @inline(__always) func write<T: FixedWidthInteger & SignedInteger>(_ value: T) {
        bytes.append(BinaryTag.signed)
        appendVarint(zigzag(Int64(value)), to: &bytes)
    }

    @inline(__always) func write<T: FixedWidthInteger & UnsignedInteger>(_ value: T) {
        bytes.append(BinaryTag.unsigned)
        appendVarint(UInt64(value), to: &bytes)
    }

    @inline(__always) func write(_ value: Double) {
        bytes.append(BinaryTag.double)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    @inline(__always) func write(_ value: Float) {
        bytes.append(BinaryTag.float)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
    }

    @inline(__always) func write(_ value: String) {
        bytes.append(BinaryTag.string)
        var value = value
        value.withUTF8 { utf8 in
            appendVarint(UInt64(utf8.count), to: &bytes)
            bytes.append(contentsOf: utf8)
        }
    }

    @inline(__always) func write(bytes raw: [UInt8]) {
        bytes.append(BinaryTag.bytes)
        appendVarint(UInt64(raw.count), to: &bytes)
        bytes.append(contentsOf: raw)
    }

    @inline(__always) func writeKey(_ key: StaticString) {
        appendVarint(UInt64(key.utf8CodeUnitCount), to: &bytes)
        bytes.append(contentsOf: UnsafeBufferPointer(start: key.utf8Start, count: key.utf8CodeUnitCount))
    }

    @inline(__always) func writeKey(_ key: some CodingKey) {
        var text = key.stringValue
        text.withUTF8 { utf8 in
            appendVarint(UInt64(utf8.count), to: &bytes)
            bytes.append(contentsOf: utf8)
        }
    }

    /// Writes any `Encodable`, with fast paths for byte arrays.
    func write<T: Encodable>(_ value: T, encoder: BinaryEncoder) throws {
        // Comparing metatypes first: a failed `as?` costs a dynamic cast on every value. (Written as literals, not
        // globals: a global's lazy initialiser costs a `swift_once` call on every value.)
        if T.self == [UInt8].self, let raw = value as? [UInt8] { return write(bytes: raw) }
        if T.self == Data.self, let data = value as? Data {
            bytes.append(BinaryTag.bytes)
            appendVarint(UInt64(data.count), to: &bytes)
            bytes.append(contentsOf: data)
            return
        }
        let depth = open.count
        let saved = currentValueContainer
        let start = bytes.count
        currentValueContainer = nil
        defer { currentValueContainer = saved }
        try value.encode(to: encoder)
        close(downTo: depth)
        if bytes.count == start { writeNil() }  // a value that wrote nothing still takes a slot
    }
}

/// The `Encoder` of ``BinaryMessageCodec``. One instance serves a whole value tree.
///
/// A type on a hot path can write its fields straight through ``keyedWriter()`` when its `encode(to:)` is
/// handed this encoder: the same bytes as its keyed container would give, without the container's box and a
/// generic call per field.
package final class BinaryEncoder: Encoder {
    let state: BinaryEncoderState
    package var codingPath: [any CodingKey] { [] }
    package var userInfo: [CodingUserInfoKey: Any] { [:] }

    init(state: BinaryEncoderState) { self.state = state }

    package func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        let handle = valueContainer(tag: BinaryTag.keyed)
        return KeyedEncodingContainer(
            BinaryKeyedEncoding<Key>(encoder: self, depth: handle.depth, serial: handle.serial))
    }

    package func unkeyedContainer() -> any UnkeyedEncodingContainer {
        let handle = valueContainer(tag: BinaryTag.unkeyed)
        return BinaryUnkeyedEncoding(encoder: self, depth: handle.depth, serial: handle.serial)
    }

    package func singleValueContainer() -> any SingleValueEncodingContainer {
        BinarySingleValueEncoding(encoder: self, depth: state.depth)
    }

    /// The keyed container of the value being encoded, as a direct writer.
    package func keyedWriter() -> BinaryKeyedWriter {
        let handle = valueContainer(tag: BinaryTag.keyed)
        return BinaryKeyedWriter(encoder: self, depth: handle.depth, serial: handle.serial)
    }

    /// The container of the value being encoded: opened once, handed out again on later requests.
    private func valueContainer(tag: UInt8) -> (depth: Int, serial: Int) {
        if let existing = state.currentValueContainer { return existing }
        let handle = state.openContainer(tag: tag)
        state.currentValueContainer = handle
        return handle
    }
}

/// A keyed container of ``BinaryEncoder`` written directly, keys given as literals: what
/// `KeyedEncodingContainer` would write for the same calls (a field left out is what `encodeIfPresent` does with
/// `nil`).
package struct BinaryKeyedWriter {
    let encoder: BinaryEncoder
    let depth: Int
    let serial: Int
    private var state: BinaryEncoderState { encoder.state }

    @inline(__always) private func key(_ key: StaticString) throws {
        try state.prepareWrite(depth: depth, serial: serial)
        state.writeKey(key)
    }

    package func encode(_ value: Int, forKey k: StaticString) throws { try key(k); state.write(value) }
    package func encode(_ value: Int64, forKey k: StaticString) throws { try key(k); state.write(value) }
    package func encode(_ value: String, forKey k: StaticString) throws { try key(k); state.write(value) }
    package func encode(_ value: [UInt8], forKey k: StaticString) throws { try key(k); state.write(bytes: value) }
    /// Any other value, through its `Encodable` conformance.
    package func encode<T: Encodable>(_ value: T, forKey k: StaticString) throws {
        try key(k)
        try state.write(value, encoder: encoder)
    }

    /// A keyed container nested under `k` (an enum case's associated values, say).
    package func nested(forKey k: StaticString) throws -> BinaryKeyedWriter {
        try key(k)
        let handle = state.openContainer(tag: BinaryTag.keyed)
        return BinaryKeyedWriter(encoder: encoder, depth: handle.depth, serial: handle.serial)
    }
}

struct BinaryKeyedEncoding<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let encoder: BinaryEncoder
    let depth: Int
    let serial: Int
    var codingPath: [any CodingKey] { [] }
    private var state: BinaryEncoderState { encoder.state }

    init(encoder: BinaryEncoder, depth: Int, serial: Int) {
        self.encoder = encoder
        self.depth = depth
        self.serial = serial
    }

    @inline(__always) private func key(_ key: Key) throws {
        try state.prepareWrite(depth: depth, serial: serial)
        state.writeKey(key)
    }

    mutating func encodeNil(forKey k: Key) throws { try key(k); state.writeNil() }
    mutating func encode(_ v: Bool, forKey k: Key) throws { try key(k); state.write(v) }
    mutating func encode(_ v: String, forKey k: Key) throws { try key(k); state.write(v) }
    mutating func encode(_ v: Double, forKey k: Key) throws { try key(k); state.write(v) }
    mutating func encode(_ v: Float, forKey k: Key) throws { try key(k); state.write(v) }
    mutating func encode(_ v: Int, forKey k: Key) throws { try key(k); state.write(v) }
    mutating func encode(_ v: Int8, forKey k: Key) throws { try key(k); state.write(v) }
    mutating func encode(_ v: Int16, forKey k: Key) throws { try key(k); state.write(v) }
    mutating func encode(_ v: Int32, forKey k: Key) throws { try key(k); state.write(v) }
    mutating func encode(_ v: Int64, forKey k: Key) throws { try key(k); state.write(v) }
    mutating func encode(_ v: UInt, forKey k: Key) throws { try key(k); state.write(v) }
    mutating func encode(_ v: UInt8, forKey k: Key) throws { try key(k); state.write(v) }
    mutating func encode(_ v: UInt16, forKey k: Key) throws { try key(k); state.write(v) }
    mutating func encode(_ v: UInt32, forKey k: Key) throws { try key(k); state.write(v) }
    mutating func encode(_ v: UInt64, forKey k: Key) throws { try key(k); state.write(v) }
    mutating func encode<T: Encodable>(_ v: T, forKey k: Key) throws {
        try key(k); try state.write(v, encoder: encoder)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey k: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        try? key(k)
        let handle = state.openContainer(tag: BinaryTag.keyed)
        return KeyedEncodingContainer(
            BinaryKeyedEncoding<NestedKey>(encoder: encoder, depth: handle.depth, serial: handle.serial))
    }

    mutating func nestedUnkeyedContainer(forKey k: Key) -> any UnkeyedEncodingContainer {
        try? key(k)
        let handle = state.openContainer(tag: BinaryTag.unkeyed)
        return BinaryUnkeyedEncoding(encoder: encoder, depth: handle.depth, serial: handle.serial)
    }

    mutating func superEncoder() -> any Encoder { superEncoder(forKey: Key(stringValue: "super")!) }

    mutating func superEncoder(forKey k: Key) -> any Encoder {
        try? key(k)
        state.currentValueContainer = nil
        return encoder
    }
}

struct BinaryUnkeyedEncoding: UnkeyedEncodingContainer {
    let encoder: BinaryEncoder
    let depth: Int
    let serial: Int
    private(set) var count = 0
    var codingPath: [any CodingKey] { [] }
    private var state: BinaryEncoderState { encoder.state }

    init(encoder: BinaryEncoder, depth: Int, serial: Int) {
        self.encoder = encoder
        self.depth = depth
        self.serial = serial
    }

    @inline(__always) private mutating func next() throws {
        try state.prepareWrite(depth: depth, serial: serial)
        count += 1
    }

    mutating func encodeNil() throws { try next(); state.writeNil() }
    mutating func encode(_ v: Bool) throws { try next(); state.write(v) }
    mutating func encode(_ v: String) throws { try next(); state.write(v) }
    mutating func encode(_ v: Double) throws { try next(); state.write(v) }
    mutating func encode(_ v: Float) throws { try next(); state.write(v) }
    mutating func encode(_ v: Int) throws { try next(); state.write(v) }
    mutating func encode(_ v: Int8) throws { try next(); state.write(v) }
    mutating func encode(_ v: Int16) throws { try next(); state.write(v) }
    mutating func encode(_ v: Int32) throws { try next(); state.write(v) }
    mutating func encode(_ v: Int64) throws { try next(); state.write(v) }
    mutating func encode(_ v: UInt) throws { try next(); state.write(v) }
    mutating func encode(_ v: UInt8) throws { try next(); state.write(v) }
    mutating func encode(_ v: UInt16) throws { try next(); state.write(v) }
    mutating func encode(_ v: UInt32) throws { try next(); state.write(v) }
    mutating func encode(_ v: UInt64) throws { try next(); state.write(v) }
    mutating func encode<T: Encodable>(_ v: T) throws { try next(); try state.write(v, encoder: encoder) }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type)
        -> KeyedEncodingContainer<NestedKey>
    {
        try? next()
        let handle = state.openContainer(tag: BinaryTag.keyed)
        return KeyedEncodingContainer(
            BinaryKeyedEncoding<NestedKey>(encoder: encoder, depth: handle.depth, serial: handle.serial))
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        try? next()
        let handle = state.openContainer(tag: BinaryTag.unkeyed)
        return BinaryUnkeyedEncoding(encoder: encoder, depth: handle.depth, serial: handle.serial)
    }

    mutating func superEncoder() -> any Encoder {
        try? next()
        state.currentValueContainer = nil
        return encoder
    }
}

struct BinarySingleValueEncoding: SingleValueEncodingContainer {
    let encoder: BinaryEncoder
    let depth: Int
    var codingPath: [any CodingKey] { [] }
    private var state: BinaryEncoderState { encoder.state }

    init(encoder: BinaryEncoder, depth: Int) {
        self.encoder = encoder
        self.depth = depth
    }

    mutating func encodeNil() throws { state.writeNil() }
    mutating func encode(_ v: Bool) throws { state.write(v) }
    mutating func encode(_ v: String) throws { state.write(v) }
    mutating func encode(_ v: Double) throws { state.write(v) }
    mutating func encode(_ v: Float) throws { state.write(v) }
    mutating func encode(_ v: Int) throws { state.write(v) }
    mutating func encode(_ v: Int8) throws { state.write(v) }
    mutating func encode(_ v: Int16) throws { state.write(v) }
    mutating func encode(_ v: Int32) throws { state.write(v) }
    mutating func encode(_ v: Int64) throws { state.write(v) }
    mutating func encode(_ v: UInt) throws { state.write(v) }
    mutating func encode(_ v: UInt8) throws { state.write(v) }
    mutating func encode(_ v: UInt16) throws { state.write(v) }
    mutating func encode(_ v: UInt32) throws { state.write(v) }
    mutating func encode(_ v: UInt64) throws { state.write(v) }
    mutating func encode<T: Encodable>(_ v: T) throws { try state.write(v, encoder: encoder) }
}
