internal import NIOCore
internal import NIOHPACK
internal import NIOHTTP2

/// Which streams of an h2c connection the frame-level shortcut (``HTTP2ShortcutHandler``) answers itself and
/// which pass on to the stream multiplexer (a child channel each, and Hummingbird's router): a value that
/// returns what to do with each frame, tested without sockets.
///
/// A stream is the shortcut's when its opening `HEADERS` frame is a request the shortcut may take (`decide`
/// says so from the header block). From then on every frame of that stream stays here: its `DATA` frames make
/// the body, the one that ends the stream starts the call, and a `RST_STREAM` forgets it. Every other frame
/// (the connection's own, and those of streams it did not take) passes on untouched, in order.
///
/// Streams the client opens have increasing odd identifiers (RFC 9113 §5.1.1; NIOHTTP2 refuses any other before
/// a frame gets here), so a `HEADERS` frame opens a stream exactly when its identifier is above every one seen so
/// far; any other `HEADERS` frame is a trailer block of a stream that is already somewhere.
struct HTTP2ShortcutState<Call> {
    enum Action {
        /// Hand the frame to the next handler (the multiplexer).
        case pass
        /// The frame was the shortcut's and needs nothing more.
        case drop
        /// The request is whole: run `call` with `body`, then ``answering(_:)`` once it is answered.
        case call(Call, ByteBuffer)
        /// Give the stream back `increment` bytes of flow-control window: its body is still coming, and a body
        /// larger than the initial window would otherwise stall.
        case windowUpdate(Int)
        /// The stream broke its own `content-length` (more body than it said, or less by its end): reset it.
        case reset
    }

    private enum Stream {
        /// Collecting the body: `length` bytes are due (the request's `content-length`).
        case receiving(Call, body: ByteBuffer, length: Int)
        /// The call runs.
        case calling
    }

    private var streams: [HTTP2StreamID: Stream] = [:]
    /// The highest stream identifier seen to open a stream.
    private var newest = HTTP2StreamID.rootStream

    /// How many streams are the shortcut's (collecting or calling).
    var count: Int { streams.count }

    /// A frame arrived. `decide` says from an opening header block whether the shortcut takes the request: its
    /// call and its `content-length`.
    mutating func received(_ frame: HTTP2Frame, decide: (HPACKHeaders) -> (Call, Int)?) -> Action {
        let id = frame.streamID
        guard let stream = streams[id] else {
            guard case .headers(let headers) = frame.payload, id > newest else { return .pass }
            newest = id
            guard let (call, length) = decide(headers.headers) else { return .pass }
            if headers.endStream {
                // No body: whole now if it said so (NIOHTTP2 refuses a stream that ends short of its length).
                guard length == 0 else { return .pass }
                streams[id] = .calling
                return .call(call, ByteBuffer())
            }
            streams[id] = .receiving(call, body: ByteBuffer(), length: length)
            return .drop
        }
        switch (frame.payload, stream) {
        case (.data(let data), .receiving(let call, var body, let length)):
            guard case .byteBuffer(var bytes) = data.data, body.readableBytes + bytes.readableBytes <= length else {
                streams[id] = nil
                return .reset
            }
            // What the frame took of the window: its payload, padding and pad-length octet included.
            let window = bytes.readableBytes + (data.paddingBytes.map { $0 + 1 } ?? 0)
            if body.readableBytes == 0 && data.endStream {
                body = bytes  // one DATA frame, the common case: no copy
            } else {
                body.writeBuffer(&bytes)
            }
            guard data.endStream else {
                streams[id] = .receiving(call, body: body, length: length)
                return window > 0 ? .windowUpdate(window) : .drop
            }
            return finish(id, call, body: body, length: length)
        case (.headers(let trailers), .receiving(let call, let body, let length)):
            // Trailers carry nothing the call uses; they end the body.
            guard trailers.endStream else { return .drop }
            return finish(id, call, body: body, length: length)
        case (.rstStream, _):
            streams[id] = nil
            return .drop
        default:
            // Window updates and priority for a stream of its own, or frames after its end: nothing to do.
            return .drop
        }
    }

    private mutating func finish(_ id: HTTP2StreamID, _ call: Call, body: ByteBuffer, length: Int) -> Action {
        guard body.readableBytes == length else {
            streams[id] = nil
            return .reset
        }
        streams[id] = .calling
        return .call(call, body)
    }

    /// The call of stream `id` has its answer: returns whether to send it (the stream still waits; it was not
    /// reset or closed meanwhile), and forgets the stream.
    mutating func answering(_ id: HTTP2StreamID) -> Bool {
        guard case .calling = streams.removeValue(forKey: id) else { return false }
        return true
    }

    /// Stream `id` closed (NIOHTTP2's `StreamClosedEvent`: reset by either side, or a stream error).
    mutating func closed(_ id: HTTP2StreamID) {
        streams[id] = nil
    }

    /// The connection closed: nothing is answered any more.
    mutating func closedAll() {
        streams.removeAll()
    }
}

extension HTTP2ShortcutState.Action: Equatable where Call: Equatable {}
