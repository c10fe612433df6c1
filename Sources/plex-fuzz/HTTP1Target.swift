import NIOCore
import NIOEmbedded
import NIOHTTP1
import PlexGateway

/// The gateway's raw HTTP/1.1 reader against NIOHTTP1 on any bytes: a request the raw path takes must be one
/// NIOHTTP1 reads without error, the same way (method, target, keep-alive, the fields the route reads, where the
/// body starts and what it holds). A request the raw path passes on is NIOHTTP1's anyway.
func fuzzHTTP1(_ data: UnsafeRawBufferPointer) {
    guard case .take(let head) = RawRequestHead.scan(data) else { return }
    func mismatch(_ what: String) -> Never {
        fatalError("the raw reader takes \(Array(data)) as \(head), but NIOHTTP1 \(what)")
    }
    let channel = EmbeddedChannel(handler: ByteToMessageHandler(HTTPRequestDecoder()))
    defer { _ = try? channel.finish() }
    // This request only: what follows it is another request's, which the raw path reads on its own.
    let request = UnsafeRawBufferPointer(rebasing: data[..<min(data.count, head.length + head.contentLength)])
    do {
        try channel.writeInbound(ByteBuffer(bytes: request))
    } catch {
        mismatch("refuses it: \(error)")
    }
    guard case .head(let parsed)? = try? channel.readInbound(as: HTTPServerRequestPart.self) else {
        mismatch("reads no head")
    }
    guard parsed.method == .POST, parsed.uri == head.target, parsed.version == .http1_1, parsed.isKeepAlive else {
        mismatch("reads \(parsed)")
    }
    let fields: [(String, String?)] = [
        ("content-length", String(head.contentLength)), ("authorization", head.authorization),
        ("idempotency-key", head.idempotencyKey), ("plex-timeout-ms", head.timeout),
    ]
    for (name, value) in fields {
        // As the router sees them: HTTP types trims a value's leading and trailing spaces and tabs.
        let values = parsed.headers[name].map { String(Substring($0).trimmingSpacesAndTabs) }
        let same =
            name == "content-length"
            ? values.count == 1 && Int(values[0]) == head.contentLength : values == (value.map { [$0] } ?? [])
        guard same else { mismatch("reads \(name) as \(values)") }
    }
    guard parsed.headers["transfer-encoding"].isEmpty else { mismatch("reads a Transfer-Encoding") }
    // The body: what follows the head, up to its length, and then the request's end.
    var body: [UInt8] = []
    var ended = false
    while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) {
        switch part {
        case .head: mismatch("reads another head before this one's end")
        case .body(let bytes): body += Array(bytes.readableBytesView)
        case .end:
            ended = true
        }
        if ended { break }
    }
    let available = min(head.contentLength, data.count - head.length)
    guard body.count >= available, body.prefix(available).elementsEqual(data[head.length..<(head.length + available)])
    else { mismatch("reads the body as \(body)") }
    if data.count >= head.length + head.contentLength, !ended { mismatch("does not end the request after its body") }
}

extension Substring {
    fileprivate var trimmingSpacesAndTabs: Substring {
        var trimmed = self
        while let first = trimmed.first, first == " " || first == "\t" { trimmed.removeFirst() }
        while let last = trimmed.last, last == " " || last == "\t" { trimmed.removeLast() }
        return trimmed
    }
}
