/// A 64-bit hash that is the same in every process and on every machine.
///
/// Swift's `Hasher` is seeded per process, so placement must not use it. This is FNV-1a over the bytes,
/// followed by a 64-bit finaliser (from MurmurHash3) to spread nearby inputs.
public enum StableHash {
    /// FNV-1a 64 offset basis.
    public static let seed: UInt64 = 0xcbf2_9ce4_8422_2325

    /// Folds the UTF-8 bytes of `text` into `state`.
    @inlinable
    public static func combine(_ text: String, into state: inout UInt64) {
        for byte in text.utf8 { fold(byte, into: &state) }
        // A separator so ("ab","c") and ("a","bc") differ.
        fold(0xFF, into: &state)
    }

    /// One FNV-1a step.
    @inlinable
    static func fold(_ byte: UInt8, into state: inout UInt64) {
        state = (state ^ UInt64(byte)) &* 0x0000_0100_0000_01B3
    }

    /// The MurmurHash3 64-bit finaliser.
    @inlinable
    public static func finalize(_ value: UInt64) -> UInt64 {
        var h = value
        h ^= h >> 33
        h &*= 0xff51_afd7_ed55_8ccd
        h ^= h >> 33
        h &*= 0xc4ce_b9fe_1a85_ec53
        h ^= h >> 33
        return h
    }

    /// The stable hash of a sequence of strings.
    @inlinable
    public static func hash(_ parts: String...) -> UInt64 {
        var state = seed
        for part in parts { combine(part, into: &state) }
        return finalize(state)
    }

    /// The stable hash of `actor`'s description (`type/key`), equal to `hash(actor.description)`, without
    /// building the description.
    @inlinable
    public static func hash(describing actor: ActorID) -> UInt64 {
        var state = seed
        for byte in actor.typeName.utf8 { fold(byte, into: &state) }
        fold(UInt8(ascii: "/"), into: &state)
        combine(actor.key, into: &state)
        return finalize(state)
    }
}
