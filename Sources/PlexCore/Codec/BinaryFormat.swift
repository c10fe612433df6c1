/// The tags and helpers of ``BinaryMessageCodec``'s format.
///
/// Every value starts with a one-byte tag:
///
/// | tag | value | body |
/// |---|---|---|
/// | `0x00` | nil | — |
/// | `0x01` / `0x02` | false / true | — |
/// | `0x03` | signed integer | zig-zag LEB128 varint |
/// | `0x04` | unsigned integer | LEB128 varint |
/// | `0x05` | Double | 8 bytes, IEEE 754, little-endian |
/// | `0x06` | Float | 4 bytes, IEEE 754, little-endian |
/// | `0x07` | String | varint length, UTF-8 |
/// | `0x08` | bytes (`[UInt8]`, `Data`) | varint length, raw |
/// | `0x09` | keyed container | varint length of what follows, then pairs of key (varint length, UTF-8) and value |
/// | `0x0A` | unkeyed container | varint length of what follows, then values |
enum BinaryTag {
    static let null: UInt8 = 0x00
    static let `false`: UInt8 = 0x01
    static let `true`: UInt8 = 0x02
    static let signed: UInt8 = 0x03
    static let unsigned: UInt8 = 0x04
    static let double: UInt8 = 0x05
    static let float: UInt8 = 0x06
    static let string: UInt8 = 0x07
    static let bytes: UInt8 = 0x08
    static let keyed: UInt8 = 0x09
    static let unkeyed: UInt8 = 0x0A
}

/// Writes an unsigned LEB128 varint.
@inline(__always)
func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
    var v = value
    while v >= 0x80 {
        bytes.append(UInt8(truncatingIfNeeded: v) | 0x80)
        v >>= 7
    }
    bytes.append(UInt8(v))
}

/// The number of bytes `value` takes as a varint.
@inline(__always)
func varintSize(_ value: UInt64) -> Int {
    var v = value
    var n = 1
    while v >= 0x80 {
        v >>= 7
        n += 1
    }
    return n
}

@inline(__always)
func zigzag(_ value: Int64) -> UInt64 { UInt64(bitPattern: (value << 1) ^ (value >> 63)) }

@inline(__always)
func unzigzag(_ value: UInt64) -> Int64 { Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1) }
