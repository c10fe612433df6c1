internal import HTTPTypes
internal import NIOCore
internal import NIOHPACK
internal import NIOHTTP2
internal import PlexTransport

/// The shortcut for `POST /v1/actors/{type}/{key}` on an HTTP/2 connection (h2c, or TLS), on frames: it sits
/// between NIOHTTP2's connection handler and the stream multiplexer and answers a stream it takes with a `HEADERS`
/// and a `DATA` frame, so that stream never gets a child channel, an async channel or a task of Hummingbird's
/// (which cost more than the call itself: docs/Performance.md, eighth gateway measurement). Every other stream, and
/// the connection's own frames, pass on to the multiplexer and Hummingbird's router.
///
/// It takes a stream whose request the router would answer the same way (`Gateway.shortcut(_:)` on the header
/// block, the decision HTTP/1.1's shortcuts share) and renders the outcome with the same function as they do
/// (``Gateway/shortcutAnswer(_:date:)``). The streams of one connection run their calls side by side, each
/// answered when it is done; NIOHTTP2's `SETTINGS_MAX_CONCURRENT_STREAMS` bounds how many. Which frames are its
/// own is ``HTTP2ShortcutState``.
final class HTTP2ShortcutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private let gateway: Gateway
    /// The gateway's decision, made once (a partial application per frame would copy the gateway each time).
    private let decide: (HPACKHeaders) -> (ActorCall, Int)?
    /// The connection's event loop, where calls run; set when the handler is added.
    private var executor: EventLoopTaskExecutor?
    private var state = HTTP2ShortcutState<ActorCall>()
    private var date = HTTPDate()
    /// Whether a read is in progress, so that answers given meanwhile wait for its read-complete to flush.
    private var reading = false
    private var flushPending = false
    /// Whether a flush waits for the event loop's next turn (see ``flush(_:)``).
    private var flushScheduled = false

    init(gateway: Gateway) {
        self.gateway = gateway
        self.decide = gateway.shortcut
    }

    func handlerAdded(context: ChannelHandlerContext) {
        executor = EventLoopTaskExecutor(eventLoop: context.eventLoop)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        reading = true
        let frame = unwrapInboundIn(data)
        switch state.received(frame, decide: decide) {
        case .pass: context.fireChannelRead(data)
        case .drop: break
        case .call(let call, let body): run(call, body: body, stream: frame.streamID, context: context)
        case .windowUpdate(let increment):
            write(HTTP2Frame(streamID: frame.streamID, payload: .windowUpdate(windowSizeIncrement: increment)), context)
        case .reset:
            write(HTTP2Frame(streamID: frame.streamID, payload: .rstStream(.protocolError)), context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        reading = false
        if flushPending {
            flushPending = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let closed = event as? StreamClosedEvent { state.closed(closed.streamID) }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.closedAll()
        context.fireChannelInactive()
    }

    private func run(_ call: ActorCall, body: ByteBuffer, stream: HTTP2StreamID, context: ChannelHandlerContext) {
        let executor = self.executor ?? EventLoopTaskExecutor(eventLoop: context.eventLoop)
        gateway.start(call, body: Array(body.readableBytesView), on: executor) { result in
            self.respond(result, stream: stream, context: context)
        }
    }

    private func respond(
        _ result: Result<[UInt8], GatewayError>, stream: HTTP2StreamID, context: ChannelHandlerContext
    ) {
        // A stream reset (or a connection closed) meanwhile gets no answer: its call has run all the same, as a
        // call whose HTTP/1.1 client went away has.
        guard state.answering(stream) else { return }
        let (status, fields, body) = Gateway.shortcutAnswer(result, date: date.now())
        var headers = HPACKHeaders()
        headers.reserveCapacity(fields.count + 1)
        headers.add(name: ":status", value: status.code == 200 ? "200" : String(status.code))
        for field in fields { headers.add(name: field.name.canonicalName, value: field.value) }
        let frame = HTTP2Frame.FramePayload.Headers(headers: headers, endStream: body.isEmpty)
        context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .headers(frame))), promise: nil)
        if !body.isEmpty {
            let data = HTTP2Frame.FramePayload.Data(
                data: .byteBuffer(context.channel.allocator.buffer(bytes: body)), endStream: true)
            context.write(wrapOutboundOut(HTTP2Frame(streamID: stream, payload: .data(data))), promise: nil)
        }
        flush(context)
    }

    private func write(_ frame: HTTP2Frame, _ context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(frame), promise: nil)
        flush(context)
    }

    /// Flushes now, at the end of the read in progress (one write for all the answers a read brings), or, while
    /// other calls of this connection still run, on the event loop's next turn: the answers of a burst of streams
    /// (a client with several in flight, or durable calls that one journal commit acknowledges together) then
    /// leave in one write instead of one each. The last call running flushes at once, so a client with one stream
    /// at a time waits for nothing.
    private func flush(_ context: ChannelHandlerContext) {
        if reading {
            flushPending = true
        } else if state.count == 0 {
            context.flush()
        } else if !flushScheduled {
            flushScheduled = true
            context.eventLoop.assumeIsolated().execute {
                self.flushScheduled = false
                context.flush()
            }
        }
    }
}

extension Gateway {
    /// The call an opening HTTP/2 header block asks for, with its `content-length`, if the shortcut may answer it
    /// as the router would, else `nil`. One pass over the block; a field the decision reads that appears twice
    /// leaves the request to the router.
    func shortcut(_ headers: HPACKHeaders) -> (ActorCall, Int)? {
        var method: String?
        var path: String?
        var length: String?
        var authorization: String?
        var idempotencyKey: String?
        var timeout: String?
        func set(_ slot: inout String?, _ value: String) -> Bool {
            guard slot == nil else { return false }
            slot = value
            return true
        }
        // NIOHTTP2 has checked the block: names are lowercase, pseudo-fields come first and are known.
        for (name, value, _) in headers {
            let fresh: Bool
            switch name {
            case ":method": fresh = set(&method, value)
            case ":path": fresh = set(&path, value)
            case "content-length": fresh = set(&length, value)
            case "authorization": fresh = set(&authorization, value)
            case HTTPField.Name.idempotencyKey.canonicalName: fresh = set(&idempotencyKey, value)
            case HTTPField.Name.plexTimeout.canonicalName: fresh = set(&timeout, value)
            case "expect": return nil
            default: fresh = true
            }
            guard fresh else { return nil }
        }
        guard method == "POST", let path, let length = length.flatMap(Int.init), length >= 0,
            let call = shortcut(
                target: path, contentLength: length, authorization: authorization, idempotencyKey: idempotencyKey,
                timeoutHeader: timeout)
        else { return nil }
        return (call, length)
    }
}
