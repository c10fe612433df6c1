internal import HTTPTypes
internal import Logging
internal import NIOCore
internal import PlexTransport

/// The plain HTTP/1.1 listener's raw path: it reads `POST /v1/actors/{type}/{key}` straight from the socket's
/// bytes and writes the answer as bytes, without NIOHTTP1, HTTP types or Hummingbird, which together cost more
/// than the call (`plex-bench http-baseline`: a fixed reply from NIOHTTP1 tops out at 0.6-0.7 of one from a
/// minimal parser). It sits first in the connection's pipeline.
///
/// A connection starts on the raw path and stays there while every request is one ``RawRequestHead`` reads and
/// the gateway's shortcut decision takes (``Gateway/shortcut(target:contentLength:authorization:idempotencyKey:timeoutHeader:)``,
/// shared with ``ShortcutHandler``). At the first other request (or a parse doubt, an error, the client's
/// half-close) it hands the connection over for good, once the call in hand is answered: NIOHTTP1's codec and
/// Hummingbird's connection state handler (keep-alive, idle timeout, graceful stop) join the pipeline behind it
/// (``PlainHTTP1Channel``; kept out until then: they would cost every read, and the state handler would take a
/// connection whose requests it never sees for idle), it passes on the bytes from that request on, and from then
/// passes everything through. NIOHTTP1 and the router answer that request and the rest as they always do, with
/// ``ShortcutHandler`` taking the actor calls among them.
///
/// On the raw path it does what the state handler would: one call at a time, pipelined requests taken in order
/// after it; reads go on during a call until bytes wait behind it, and stop while the socket takes no more
/// writes; the connection closes after `idleTimeout` without a whole head, body bytes or an answer (a slow
/// partial head is closed as idle), and on a graceful stop once the call in hand and the whole requests read
/// behind it are answered.
final class PlainHTTP1Handler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    /// What arrives besides bytes, held while a call runs and passed on after the hand-over.
    private enum Held {
        case error(any Error)
        case event(Any)
    }

    private let gateway: Gateway
    private let idleTimeout: TimeAmount
    /// Adds what the connection needs once it is handed over, right after this handler (its context's).
    private let handOver: (ChannelHandlerContext) throws -> Void
    private let logger: Logger
    private var executor: EventLoopTaskExecutor?
    private var passedOn = false
    /// Bytes read and not yet taken: the start of the next request.
    private var buffer: ByteBuffer?
    private var calling = false
    private var closing = false
    private var held: [Held] = []
    private var readPending = false
    private var lastActive = NIODeadline.now()
    private var idleCheck: Scheduled<Void>?
    private var date = HTTPDate()
    private var client = ClientPresenceSlot()

    init(
        gateway: Gateway, idleTimeout: Duration, logger: Logger,
        handOver: @escaping (ChannelHandlerContext) throws -> Void
    ) {
        self.gateway = gateway
        self.idleTimeout = .nanoseconds(Int64(clamping: idleTimeout.clampedNanoseconds))
        self.logger = logger
        self.handOver = handOver
    }

    func handlerAdded(context: ChannelHandlerContext) {
        executor = EventLoopTaskExecutor(eventLoop: context.eventLoop)
        if context.channel.isActive { scheduleIdleCheck(context: context) }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        idleCheck?.cancel()
    }

    func channelActive(context: ChannelHandlerContext) {
        lastActive = .now()
        scheduleIdleCheck(context: context)
        context.fireChannelActive()
    }

    func channelInactive(context: ChannelHandlerContext) {
        idleCheck?.cancel()
        client.clientLeft()
        context.fireChannelInactive()
    }

    /// Whether the client is still there, for a request of this connection that waits long.
    func clientPresence() -> ClientPresence { client.current() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !passedOn else { return context.fireChannelRead(data) }
        var bytes = unwrapInboundIn(data)
        if buffer == nil || buffer!.readableBytes == 0 {
            buffer = bytes
        } else {
            buffer!.writeBuffer(&bytes)
        }
        // Not yet activity: a head still arriving is not a request (a slow partial head is closed as idle).
        takeNext(context: context)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        // On the raw path the handlers behind saw no read: theirs would be work for nothing.
        if passedOn { context.fireChannelReadComplete() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !passedOn else { return context.fireErrorCaught(error) }
        held.append(.error(error))
        if !calling { passOn(context: context) }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case ChannelEvent.inputClosed = event { client.clientLeft() }
        guard !passedOn else { return context.fireUserInboundEventTriggered(event) }
        switch event {
        case is ChannelShouldQuiesceEvent:
            // A graceful stop: the call in hand and the whole requests read behind it are answered, then the
            // connection closes; nothing more is read.
            closing = true
            if !calling { takeNext(context: context) }
        case ChannelEvent.inputClosed:
            // After what was read: NIOHTTP1 and the router end the connection as they always do.
            held.append(.event(event))
            if !calling { passOn(context: context) }
        default:
            context.fireUserInboundEventTriggered(event)
        }
    }

    func read(context: ChannelHandlerContext) {
        guard !passedOn else { return context.read() }
        if mayRead(context: context) {
            context.read()
        } else {
            readPending = true
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if !passedOn, context.channel.isWritable {
            takeNext(context: context)
        }
        context.fireChannelWritabilityChanged()
    }

    /// Reads go on during a call until bytes wait behind it, never while the socket takes no more writes, and
    /// not once the connection is closing.
    private func mayRead(context: ChannelHandlerContext) -> Bool {
        context.channel.isWritable && !closing && (!calling || (buffer?.readableBytes ?? 0) == 0)
    }

    /// Takes up the next request in the buffer, if one has all arrived and no call runs: calls it, or hands the
    /// connection over; closing, with no whole request left, closes. Then reads again if a read waits and may.
    private func takeNext(context: ChannelHandlerContext) {
        guard !calling else { return readIfWanted(context: context) }
        // Taken up again once the socket takes writes (`channelWritabilityChanged`).
        guard context.channel.isWritable else { return }
        if var bytes = buffer, bytes.readableBytes > 0 {
            switch bytes.withUnsafeReadableBytes({ RawRequestHead.scan($0) }) {
            case .incomplete: break
            case .passOn: return passOn(context: context)
            case .take(let head):
                // A whole head, or more of a taken head's body: activity, as for the state handler.
                lastActive = .now()
                guard
                    let call = gateway.shortcut(
                        target: head.target, contentLength: head.contentLength, authorization: head.authorization,
                        idempotencyKey: head.idempotencyKey, timeoutHeader: head.timeout)
                else { return passOn(context: context) }
                if bytes.readableBytes >= head.length + head.contentLength {
                    bytes.moveReaderIndex(forwardBy: head.length)
                    let body = bytes.readBytes(length: head.contentLength) ?? []
                    buffer = bytes.readableBytes > 0 ? bytes : nil
                    run(call, body: body, context: context)
                    return readIfWanted(context: context)
                }
            }
        }
        if closing { return context.close(promise: nil) }
        readIfWanted(context: context)
    }

    private func readIfWanted(context: ChannelHandlerContext) {
        if readPending, mayRead(context: context) {
            readPending = false
            context.read()
        }
    }

    private func run(_ call: ActorCall, body: [UInt8], context: ChannelHandlerContext) {
        calling = true
        let executor = self.executor ?? EventLoopTaskExecutor(eventLoop: context.eventLoop)
        gateway.start(call, body: body, on: executor) { result in
            self.respond(result, context: context)
        }
    }

    private func respond(_ result: Result<[UInt8], GatewayError>, context: ChannelHandlerContext) {
        calling = false
        lastActive = .now()
        var out: ByteBuffer
        if case .success(let body) = result {
            // The usual answer, written directly: the same fields, in the same order, as the general case.
            out = context.channel.allocator.buffer(capacity: 128 + body.count)
            out.writeStaticString("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: ")
            out.writeString(String(body.count))
            out.writeStaticString("\r\nDate: ")
            out.writeString(date.now())
            out.writeStaticString("\r\n\r\n")
            out.writeBytes(body)
        } else {
            let (status, fields, body) = Gateway.shortcutAnswer(result, date: date.now())
            out = context.channel.allocator.buffer(capacity: 256 + body.count)
            out.writeString("HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n")
            for field in fields {
                out.writeString(field.name.rawName)
                out.writeStaticString(": ")
                out.writeString(field.value)
                out.writeStaticString("\r\n")
            }
            out.writeStaticString("\r\n")
            out.writeBytes(body)
        }
        guard !closing else {
            // The next whole request, or the close, once the answer is written: a close now would drop what the
            // socket has not taken yet.
            let written = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.byteBuffer(out)), promise: written)
            written.futureResult.assumeIsolated().whenComplete { _ in
                if context.channel.isActive { self.takeNext(context: context) }
            }
            return
        }
        context.writeAndFlush(wrapOutboundOut(.byteBuffer(out)), promise: nil)
        guard context.channel.isActive else { return }
        if held.isEmpty {
            takeNext(context: context)
        } else {
            passOn(context: context)
        }
    }

    /// Hands the connection over to NIOHTTP1 and Hummingbird for good: adds their handlers behind this one
    /// (`handOver`), passes on the bytes not taken, what was held and a graceful stop that came first, and makes
    /// the read that waits.
    private func passOn(context: ChannelHandlerContext) {
        passedOn = true
        idleCheck?.cancel()
        idleCheck = nil
        do {
            try handOver(context)
        } catch {
            logger.error("cannot hand an HTTP/1.1 connection over; closing it", metadata: ["error": "\(error)"])
            return context.close(promise: nil)
        }
        if let bytes = buffer, bytes.readableBytes > 0 {
            context.fireChannelRead(wrapInboundOut(bytes))
            context.fireChannelReadComplete()
        }
        buffer = nil
        let held = self.held
        self.held = []
        for item in held {
            switch item {
            case .error(let error): context.fireErrorCaught(error)
            case .event(let event): context.fireUserInboundEventTriggered(event)
            }
        }
        // A graceful stop came first: the state handler, new here, closes once what it was given is answered.
        if closing { context.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent()) }
        if readPending {
            readPending = false
            context.read()
        }
    }

    /// Closes the connection once it has been idle (no call; no whole head, body bytes or answer) for
    /// `idleTimeout`.
    private func scheduleIdleCheck(context: ChannelHandlerContext) {
        guard idleCheck == nil, !passedOn else { return }
        let due = lastActive + idleTimeout
        idleCheck = context.eventLoop.assumeIsolated().scheduleTask(deadline: due) {
            self.idleCheck = nil
            guard !self.passedOn, context.channel.isActive else { return }
            if !self.calling, NIODeadline.now() >= self.lastActive + self.idleTimeout {
                context.close(promise: nil)
            } else {
                if self.calling { self.lastActive = .now() }
                self.scheduleIdleCheck(context: context)
            }
        }
    }
}
