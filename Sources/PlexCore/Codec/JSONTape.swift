/// A JSON text read into a flat list of nodes, for ``JSONMessageCodec``'s fast path (``JSONTapeDecoder``).
///
/// It reads only the plainest JSON and gives up (``NotFast``) on anything else: a string with a byte outside
/// ASCII or a `\u` escape, a duplicate key, an escaped key, nesting deeper than ``maximumDepth``, anything that
/// is not JSON. The codec then decodes the text with Foundation's `JSONDecoder`, which answers it (or gives
/// its error) as it always did. So the fast path never has to match Foundation's errors, only its values,
/// and only for input it is sure of.
struct JSONTape {
    /// The fast path gives up; Foundation decodes the text instead.
    struct NotFast: Error {}

    enum Kind: UInt8 {
        case null, `false`, `true`
        /// A number without a fraction or exponent.
        case integer
        /// A number with a fraction or exponent.
        case number
        case string
        /// A string with backslash escapes (none of them `\u`).
        case escapedString
        case object
        case array
    }

    struct Node {
        var kind: Kind
        /// The value's bytes (a string's without its quotes; a container's from its bracket).
        var start: Int
        var end: Int
        /// The index of the node after this one's subtree.
        var next: Int
        /// A container's members (an object's key and value count as one).
        var count: Int
    }

    static let maximumDepth = 256

    let base: UnsafeRawBufferPointer
    private(set) var nodes: [Node] = []
    private var position = 0

    /// Reads `base`, which must hold one JSON value with only whitespace around it.
    init(_ base: UnsafeRawBufferPointer) throws(NotFast) {
        self.base = base
        nodes.reserveCapacity(16)
        skipSpace()
        try value(depth: 0)
        skipSpace()
        guard position == base.count else { throw NotFast() }
    }

    @inline(__always) private func byte(_ offset: Int) -> UInt8? {
        offset < base.count ? base[offset] : nil
    }

    private mutating func skipSpace() {
        while let b = byte(position), b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 { position += 1 }
    }

    private mutating func value(depth: Int) throws(NotFast) {
        guard let first = byte(position), depth < Self.maximumDepth else { throw NotFast() }
        switch first {
        case UInt8(ascii: "{"): try container(object: true, depth: depth)
        case UInt8(ascii: "["): try container(object: false, depth: depth)
        case UInt8(ascii: "\""): try string()
        case UInt8(ascii: "t"): try literal("true", .true)
        case UInt8(ascii: "f"): try literal("false", .false)
        case UInt8(ascii: "n"): try literal("null", .null)
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): try number()
        default: throw NotFast()
        }
    }

    private mutating func literal(_ text: StaticString, _ kind: Kind) throws(NotFast) {
        let count = text.utf8CodeUnitCount
        guard position + count <= base.count else { throw NotFast() }
        for i in 0..<count where base[position + i] != text.utf8Start[i] { throw NotFast() }
        nodes.append(Node(kind: kind, start: position, end: position + count, next: nodes.count + 1, count: 0))
        position += count
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, as JSON has it.
    private mutating func number() throws(NotFast) {
        let start = position
        if byte(position) == UInt8(ascii: "-") { position += 1 }
        guard let lead = byte(position), isDigit(lead) else { throw NotFast() }
        position += 1
        if lead != UInt8(ascii: "0") { skipDigits() }
        var kind = Kind.integer
        if byte(position) == UInt8(ascii: ".") {
            position += 1
            guard let b = byte(position), isDigit(b) else { throw NotFast() }
            skipDigits()
            kind = .number
        }
        if let e = byte(position), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
            position += 1
            if let sign = byte(position), sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") { position += 1 }
            guard let b = byte(position), isDigit(b) else { throw NotFast() }
            skipDigits()
            kind = .number
        }
        nodes.append(Node(kind: kind, start: start, end: position, next: nodes.count + 1, count: 0))
    }

    @inline(__always) private func isDigit(_ b: UInt8) -> Bool { b &- UInt8(ascii: "0") < 10 }

    private mutating func skipDigits() {
        while let b = byte(position), isDigit(b) { position += 1 }
    }

    /// A string of printable ASCII, with escapes other than `\u`.
    private mutating func string() throws(NotFast) {
        position += 1
        let start = position
        var kind = Kind.string
        while true {
            guard let b = byte(position), b >= 0x20, b < 0x80 else { throw NotFast() }
            if b == UInt8(ascii: "\"") { break }
            if b == UInt8(ascii: "\\") {
                guard let escaped = byte(position + 1), Self.unescaped(escaped) != nil else { throw NotFast() }
                kind = .escapedString
                position += 1
            }
            position += 1
        }
        nodes.append(Node(kind: kind, start: start, end: position, next: nodes.count + 1, count: 0))
        position += 1
    }

    /// What `\` and `escaped` stand for, or `nil` for `\u` and anything JSON does not allow.
    static func unescaped(_ escaped: UInt8) -> UInt8? {
        switch escaped {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): escaped
        case UInt8(ascii: "b"): 0x08
        case UInt8(ascii: "f"): 0x0C
        case UInt8(ascii: "n"): 0x0A
        case UInt8(ascii: "r"): 0x0D
        case UInt8(ascii: "t"): 0x09
        default: nil
        }
    }

    private mutating func container(object: Bool, depth: Int) throws(NotFast) {
        let index = nodes.count
        nodes.append(Node(kind: object ? .object : .array, start: position, end: 0, next: 0, count: 0))
        position += 1
        let close = object ? UInt8(ascii: "}") : UInt8(ascii: "]")
        var count = 0
        skipSpace()
        if byte(position) == close {
            position += 1
        } else {
            while true {
                if object {
                    guard byte(position) == UInt8(ascii: "\"") else { throw NotFast() }
                    try string()
                    guard nodes[nodes.count - 1].kind == .string else { throw NotFast() }  // an escaped key
                    skipSpace()
                    guard byte(position) == UInt8(ascii: ":") else { throw NotFast() }
                    position += 1
                    skipSpace()
                }
                try value(depth: depth + 1)
                count += 1
                skipSpace()
                guard let b = byte(position) else { throw NotFast() }
                position += 1
                if b == close { break }
                guard b == UInt8(ascii: ",") else { throw NotFast() }
                skipSpace()
            }
        }
        nodes[index].end = position
        nodes[index].next = nodes.count
        nodes[index].count = count
        if object, count > 1, hasDuplicateKeys(index) { throw NotFast() }
    }

    /// Whether two keys of the object at `index` are the same (which value Foundation keeps is its business).
    private func hasDuplicateKeys(_ index: Int) -> Bool {
        var keys: [Range<Int>] = []
        var large = Set<String>()
        var key = index + 1
        while key < nodes[index].next {
            let range = nodes[key].start..<nodes[key].end
            if nodes[index].count > 16 {
                if !large.insert(text(range)).inserted { return true }
            } else {
                for seen in keys where equal(seen, range) { return true }
                keys.append(range)
            }
            key = nodes[key + 1].next
        }
        return false
    }

    /// The bytes at `range` as text (ASCII: the tape holds no other).
    func text(_ range: Range<Int>) -> String {
        String(decoding: UnsafeRawBufferPointer(rebasing: base[range]), as: UTF8.self)
    }

    /// Whether the bytes at `a` and `b` are the same.
    func equal(_ a: Range<Int>, _ b: Range<Int>) -> Bool {
        guard a.count == b.count else { return false }
        for i in 0..<a.count where base[a.lowerBound + i] != base[b.lowerBound + i] { return false }
        return true
    }

    /// Whether the bytes at `range` are `text`'s UTF-8.
    func equal(_ range: Range<Int>, _ text: UnsafeBufferPointer<UInt8>) -> Bool {
        guard range.count == text.count else { return false }
        for i in 0..<text.count where base[range.lowerBound + i] != text[i] { return false }
        return true
    }
}
