internal import NIOCore
internal import NIOHTTP2

/// Ends an HTTP/2 connection of the gateway when it has had no open stream for the idle timeout, and on a
/// graceful stop (`ChannelShouldQuiesceEvent`) once the streams opened before the stop are done: each time with one
/// `GOAWAY` naming the last stream it took, sent only while no stream is open and followed by the close. Streams the
/// client opens after the stop began are refused at once (`RST_STREAM REFUSED_STREAM`, their frames go no further),
/// so a busy client cannot keep the connection open, and learns for each request whether it ran: the answered
/// ones and only those did, and a refused one may be sent again elsewhere. A client that closes its side of the
/// connection ends it the same way, once its finished requests are answered (an unfinished one is reset).
///
/// Why not NIO's `NIOHTTP2ServerConnectionManagementHandler` (a first `GOAWAY` with the highest possible stream
/// id and a `PING`, then the real one): NIOHTTP2 refuses every new stream once its side has sent any `GOAWAY`, and
/// the `DATA` frames of a stream it refused that way then end the connection with `PROTOCOL_ERROR`, taking the
/// answers of the streams still running with it. Requests a client sent just as a graceful stop began were then
/// neither answered nor refused one by one (docs/Performance.md, eighth gateway measurement).
final class HTTP2ConnectionManager: ChannelDuplexHandler {
    typealias InboundIn = HTTP2Frame
    typealias InboundOut = HTTP2Frame
    typealias OutboundIn = HTTP2Frame
    typealias OutboundOut = HTTP2Frame

    private var life = HTTP2ConnectionLife()
    private let idleTimeout: TimeAmount
    private var idleTimer: Scheduled<Void>?
    private var ended = false
    private var flushPending = false
    private var client = ClientPresenceSlot()

    init(idleTimeout: TimeAmount) {
        self.idleTimeout = idleTimeout
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { startIdleTimer(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        startIdleTimer(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        ended = true
        client.clientLeft()
        context.fireChannelInactive()
    }

    /// Whether the client is still there, for a stream of this connection that waits long.
    func clientPresence() -> ClientPresence { client.current() }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleTimer?.cancel()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let frame = unwrapInboundIn(data)
        switch frame.payload {
        case .headers(let headers) where headers.endStream: life.requestEnded(frame.streamID)
        case .data(let data) where data.endStream: life.requestEnded(frame.streamID)
        default: break
        }
        guard life.refuses(frame.streamID) else {
            context.fireChannelRead(data)
            return
        }
        // A stream opened after the stop began: refused, and none of its frames goes further.
        if case .headers = frame.payload {
            context.write(
                wrapOutboundOut(HTTP2Frame(streamID: frame.streamID, payload: .rstStream(.refusedStream))), promise: nil
            )
            flushPending = true
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if flushPending {
            flushPending = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        switch event {
        case let created as NIOHTTP2StreamCreatedEvent:
            life.opened(created.streamID)
            idleTimer?.cancel()
            idleTimer = nil
        case let closed as StreamClosedEvent:
            act(life.closed(closed.streamID), context: context)
        case is ChannelShouldQuiesceEvent:
            act(life.quiesce(), context: context)
        case ChannelEvent.inputClosed:
            // The client closed its side: no frame can come any more. Its streams whose request is whole are
            // answered (a long poll among them at once: nobody may be left to wait for it), those whose request
            // can never end are reset, then the connection ends as on a graceful stop; a client that closed
            // altogether resets the connection at the first answer. An answer that waits for a window update
            // (which cannot come) is not waited for beyond the idle timeout: the connection is silent from now
            // on, and ``SilentConnectionGuard`` closes it.
            client.clientLeft()
            let (incomplete, next) = life.clientClosed()
            for id in incomplete {
                context.write(wrapOutboundOut(HTTP2Frame(streamID: id, payload: .rstStream(.cancel))), promise: nil)
            }
            if !incomplete.isEmpty { context.flush() }
            act(next, context: context)
        default: break
        }
        context.fireUserInboundEventTriggered(event)
    }

    private func act(_ next: HTTP2ConnectionLife.Next, context: ChannelHandlerContext) {
        switch next {
        case .nothing: break
        case .idle: startIdleTimer(context: context)
        case .end:
            // A stream closes as its last frame is written, before that frame's flush: end on the next tick, so
            // the answer leaves first (and end only if no stream opened meanwhile).
            let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            context.eventLoop.execute {
                let (manager, context) = bound.value
                if manager.life.isIdle { manager.end(context: context) }
            }
        }
    }

    private func startIdleTimer(context: ChannelHandlerContext) {
        idleTimer?.cancel()
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        idleTimer = context.eventLoop.scheduleTask(in: idleTimeout) {
            let (manager, context) = bound.value
            if manager.life.isIdle { manager.end(context: context) }
        }
    }

    /// One `GOAWAY` naming the last stream opened, then the close once it is written.
    private func end(context: ChannelHandlerContext) {
        guard !ended else { return }
        ended = true
        idleTimer?.cancel()
        let goAway = HTTP2Frame(
            streamID: .rootStream, payload: .goAway(lastStreamID: life.lastTaken, errorCode: .noError, opaqueData: nil))
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(goAway)).whenComplete { _ in
            bound.value.close(promise: nil)
        }
    }
}

/// The open streams of an HTTP/2 connection and whether it is to end: a value that says what to do next,
/// tested without sockets (``HTTP2ConnectionManager``).
struct HTTP2ConnectionLife {
    enum Next: Equatable {
        case nothing
        /// No stream is open: start the idle timer.
        case idle
        /// No stream is open and a graceful stop asked to end: end now.
        case end
    }

    private var open: Set<HTTP2StreamID> = []
    /// Open streams whose request the client has ended (`END_STREAM`): the others still wait for frames.
    private var requestEnded: Set<HTTP2StreamID> = []
    /// The highest stream opened (the root stream before any).
    private var last = HTTP2StreamID.rootStream
    /// The highest stream opened before a graceful stop began; `nil` until it does.
    private var lastBeforeStop: HTTP2StreamID?

    /// Whether no stream is open.
    var isIdle: Bool { open.isEmpty }

    /// How many streams are remembered as having their request ended (at most the open ones).
    var remembered: Int { requestEnded.count }

    /// What the `GOAWAY` names: the last stream that may have run.
    var lastTaken: HTTP2StreamID { lastBeforeStop ?? last }

    /// Whether a frame of stream `id` belongs to a stream opened after the stop began, which is refused.
    func refuses(_ id: HTTP2StreamID) -> Bool {
        guard let lastBeforeStop else { return false }
        return id > lastBeforeStop
    }

    mutating func opened(_ id: HTTP2StreamID) {
        open.insert(id)
        last = max(last, id)
    }

    /// The client ended stream `id`'s request (a frame with `END_STREAM`). NIOHTTP2 raises its events before it
    /// passes the frame on: a stream has opened by then, and may have closed already (the answer went first and
    /// this frame closed it), when it is not to be remembered, since nothing would forget it.
    mutating func requestEnded(_ id: HTTP2StreamID) {
        guard open.contains(id) else { return }
        requestEnded.insert(id)
    }

    /// The client closed its side of the connection: the open streams whose request can never end now, which are
    /// to be reset, and what to do next (as on a graceful stop).
    mutating func clientClosed() -> (incomplete: [HTTP2StreamID], next: Next) {
        (open.subtracting(requestEnded).sorted(), quiesce())
    }

    mutating func closed(_ id: HTTP2StreamID) -> Next {
        requestEnded.remove(id)
        guard open.remove(id) != nil, open.isEmpty else { return .nothing }
        return lastBeforeStop == nil ? .idle : .end
    }

    mutating func quiesce() -> Next {
        if lastBeforeStop == nil { lastBeforeStop = last }
        return open.isEmpty ? .end : .nothing
    }
}
