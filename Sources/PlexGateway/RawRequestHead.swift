/// The head of an HTTP/1.1 request read straight from the socket's bytes, as far as the gateway's raw path
/// (``PlainHTTP1Handler``) takes requests: a `POST` with a `Content-Length` body, its target, and the header
/// fields the actor-call route reads.
///
/// The reader is deliberately narrow. Whatever it is not certain NIOHTTP1 reads the same way (another method or
/// version, a bare LF, a folded or duplicated field it reads, control bytes or bytes past ASCII, `Expect`,
/// `Transfer-Encoding`, `Upgrade`, a `Connection` other than `keep-alive`, no `Content-Length`, a head longer
/// than ``maximumLength``) it leaves to NIOHTTP1 (``Scan/passOn``): it never refuses a request itself, so no
/// request gets an answer here that the router would not give.
package struct RawRequestHead: Equatable {
    /// The request target (path and query) as sent.
    package var target: String
    /// The body's length, from `Content-Length`.
    package var contentLength: Int
    /// The head's length in bytes, its blank line included: the body starts there.
    package var length: Int
    /// The fields the actor-call route reads, if present.
    package var authorization: String?
    package var idempotencyKey: String?
    /// `Plex-Timeout-Ms`.
    package var timeout: String?

    /// What the bytes at the start of a buffer hold.
    package enum Scan: Equatable {
        /// The start of a request that may be taken: more bytes are needed to know.
        case incomplete
        /// A whole head the raw path reads (its body may still be on its way).
        case take(RawRequestHead)
        /// A request for NIOHTTP1: this one and every one after it on the connection.
        case passOn
    }

    /// The longest head the raw path reads (bytes); a longer one goes to NIOHTTP1, with its own limits.
    package static let maximumLength = 8_192

    private static let method = Array("POST /".utf8)
    private static let version = Array(" HTTP/1.1".utf8)

    /// Reads the request at the start of `bytes`.
    package static func scan(_ bytes: UnsafeRawBufferPointer) -> Scan {
        let prefix = min(bytes.count, method.count)
        for index in 0..<prefix where bytes[index] != method[index] { return .passOn }
        // Lines end in CRLF; a LF without its CR is NIOHTTP1's to judge.
        var lineStart = 0
        var head = RawRequestHead(target: "", contentLength: -1, length: 0)
        var first = true
        var seen: UInt8 = 0
        var index = 0
        let limit = min(bytes.count, maximumLength)
        while index < limit {
            guard bytes[index] == 10 else {
                index += 1
                continue
            }
            guard index > lineStart, bytes[index - 1] == 13 else { return .passOn }
            let line = UnsafeRawBufferPointer(rebasing: bytes[lineStart..<(index - 1)])
            if first {
                guard let target = requestTarget(line) else { return .passOn }
                head.target = target
                first = false
            } else if line.isEmpty {
                guard head.contentLength >= 0 else { return .passOn }
                head.length = index + 1
                return .take(head)
            } else {
                guard field(line, into: &head, seen: &seen) else { return .passOn }
            }
            index += 1
            lineStart = index
        }
        return bytes.count >= maximumLength ? .passOn : .incomplete
    }

    /// The target of `POST <target> HTTP/1.1`: visible ASCII, starting with `/`.
    private static func requestTarget(_ line: UnsafeRawBufferPointer) -> String? {
        guard line.count > method.count + version.count else { return nil }
        let end = line.count - version.count
        for index in 0..<version.count where line[end + index] != version[index] { return nil }
        let target = UnsafeRawBufferPointer(rebasing: line[(method.count - 1)..<end])
        guard target.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return nil }
        return String(decoding: target, as: UTF8.self)
    }

    /// The fields read, as bits of `seen`: a second one of them is NIOHTTP1's to judge.
    private enum Known: UInt8 {
        case contentLength = 1
        case authorization = 2
        case idempotencyKey = 4
        case timeout = 8
        case connection = 16
    }

    /// Reads one field line into `head`; `false` when the request is NIOHTTP1's to judge.
    private static func field(_ line: UnsafeRawBufferPointer, into head: inout RawRequestHead, seen: inout UInt8)
        -> Bool
    {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { return false }
        let name = UnsafeRawBufferPointer(rebasing: line[..<colon])
        guard name.allSatisfy(isTokenByte) else { return false }
        var start = colon + 1
        var end = line.count
        while start < end, line[start] == 32 || line[start] == 9 { start += 1 }
        while end > start, line[end - 1] == 32 || line[end - 1] == 9 { end -= 1 }
        let value = UnsafeRawBufferPointer(rebasing: line[start..<end])
        // Visible ASCII, spaces and tabs only: no control bytes, nothing NIOHTTP1 and this could decode apart.
        guard value.allSatisfy({ ($0 >= 0x20 && $0 < 0x7F) || $0 == 9 }) else { return false }
        let known: Known
        switch name.count {
        case 14 where equalsLowercased(name, "content-length"): known = .contentLength
        case 13 where equalsLowercased(name, "authorization"): known = .authorization
        case 15 where equalsLowercased(name, "idempotency-key"): known = .idempotencyKey
        case 15 where equalsLowercased(name, "plex-timeout-ms"): known = .timeout
        case 10 where equalsLowercased(name, "connection"): known = .connection
        case 17 where equalsLowercased(name, "transfer-encoding"): return false
        case 6 where equalsLowercased(name, "expect"): return false
        case 7 where equalsLowercased(name, "upgrade"): return false
        default: return true
        }
        guard seen & known.rawValue == 0 else { return false }
        seen |= known.rawValue
        switch known {
        case .contentLength:
            // NIOHTTP1 refuses a tab after the digits (spaces pass), so a tab there is its to refuse.
            guard (1...10).contains(value.count), value.allSatisfy({ $0 >= 48 && $0 <= 57 }),
                line[end...].allSatisfy({ $0 == 32 })
            else { return false }
            head.contentLength = value.reduce(0) { $0 * 10 + Int($1 - 48) }
        case .authorization: head.authorization = String(decoding: value, as: UTF8.self)
        case .idempotencyKey: head.idempotencyKey = String(decoding: value, as: UTF8.self)
        case .timeout: head.timeout = String(decoding: value, as: UTF8.self)
        case .connection: return equalsLowercased(value, "keep-alive")
        }
        return true
    }

    /// Whether `bytes`, ASCII letters lowercased, are `text` (lowercase ASCII).
    private static func equalsLowercased(_ bytes: UnsafeRawBufferPointer, _ text: StaticString) -> Bool {
        guard bytes.count == text.utf8CodeUnitCount else { return false }
        let expected = UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount)
        for index in 0..<bytes.count {
            let byte = bytes[index]
            let lowered = byte >= 65 && byte <= 90 ? byte | 0x20 : byte
            if lowered != expected[index] { return false }
        }
        return true
    }

    /// RFC 9110 `tchar`.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default: false
        }
    }
}
