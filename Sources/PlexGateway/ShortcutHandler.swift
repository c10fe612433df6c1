internal import HTTPTypes
internal import Hummingbird
internal import NIOCore
internal import NIOHTTPTypes
internal import PlexTransport

/// The shortcut for `POST /v1/actors/{type}/{key}` on an HTTP/1.1 connection once ``PlainHTTP1Handler`` has
/// handed it over to NIOHTTP1 (HTTP/2 connections have ``HTTP2ShortcutHandler`` on frames): it answers the call on the connection's event loop, without Hummingbird's per-request work (its async
/// request and response streams, its router and middleware), which costs more than the call itself. Everything
/// else passes on to Hummingbird.
///
/// It sits after Hummingbird's connection state handler, which must see every request for keep-alive and idle
/// timeouts.
///
/// It takes only a request whose answer it gives exactly as the router would: a POST to that route with a
/// `Content-Length` within the limit, no query but `timeout_ms`, no `Expect` or `Connection: close`, the token
/// (if one is configured) right, and no tracer. Any other request (a wrong token, an internal type, a bad
/// timeout, a chunked body) passes on, and the router gives its error. The call's own outcome (the reply, or a
/// call error with its status) is rendered from the same ``Gateway`` functions as the router's route.
///
/// Whatever arrives while its call runs (pipelined requests, a parse error, the client's half-close) waits
/// behind the call's answer and is taken up in order afterwards (``ShortcutState``); reads stop once something waits,
/// and while the socket takes no more writes (a client that never reads its answers is not read either).
///
/// Measured with `scripts/bench-http.sh`: see the README's gateway figures.
final class ShortcutHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// What arrives besides parts, held in its place while a call runs.
    enum Inbound {
        case error(any Error)
        case event(Any)
    }

    private let gateway: Gateway
    /// The gateway's decision, made once (a partial application per part would copy the gateway each time).
    private let decide: (HTTPRequest) -> ActorCall?
    /// The connection's event loop, where calls run; set when the handler is added.
    private var executor: EventLoopTaskExecutor?
    private var state = ShortcutState<ActorCall, Inbound>()
    /// A read the channel asked for while reads were held back (something waits behind a call, or the socket
    /// takes no more writes), made once they may go on.
    private var readPending = false
    private var date = HTTPDate()

    init(gateway: Gateway) {
        self.gateway = gateway
        self.decide = gateway.shortcut
    }

    func handlerAdded(context: ChannelHandlerContext) {
        executor = EventLoopTaskExecutor(eventLoop: context.eventLoop)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        perform(state.read(unwrapInboundIn(data), decide: decide), context: context)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A parse error behind a running call waits for its answer: passed on now, the router would answer
        // 400 and close before the call's reply went out.
        pass(.error(error), context: context)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        // The client's half-close likewise: passed on now, the router would end the connection unanswered.
        pass(.event(event), context: context)
    }

    private func pass(_ inbound: Inbound, context: ChannelHandlerContext) {
        let (now, before) = state.other(inbound)
        guard now else { return }
        deliver(inbound, after: before, context: context)
    }

    private func deliver(_ inbound: Inbound, after parts: [HTTPRequestPart], context: ChannelHandlerContext) {
        for part in parts { context.fireChannelRead(wrapInboundOut(part)) }
        switch inbound {
        case .error(let error): context.fireErrorCaught(error)
        case .event(let event): context.fireUserInboundEventTriggered(event)
        }
    }

    /// Returns whether a part was passed on.
    @discardableResult
    private func perform(_ action: ShortcutState<ActorCall, Inbound>.Action, context: ChannelHandlerContext) -> Bool {
        switch action {
        case .pass(let part):
            context.fireChannelRead(wrapInboundOut(part))
            return true
        case .wait: return false
        case .call(let call, let body):
            run(call, body: body, context: context)
            return false
        }
    }

    private func run(_ call: ActorCall, body: ByteBuffer, context: ChannelHandlerContext) {
        let executor = self.executor ?? EventLoopTaskExecutor(eventLoop: context.eventLoop)
        gateway.start(call, body: Array(body.readableBytesView), on: executor) { result in
            self.respond(result, context: context)
        }
    }

    private func respond(_ result: Result<[UInt8], GatewayError>, context: ChannelHandlerContext) {
        let (status, fields, body) = Gateway.shortcutAnswer(result, date: date.now())
        context.write(wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        state.answered()
        guard context.channel.isActive else {
            // The client is gone: what it sent behind the call is never answered, so it never runs either.
            state.dropHeld()
            return
        }
        resume(context: context)
    }

    /// Takes up what arrived during a call, one at a time, until it is all done, a held request starts a call,
    /// or the socket takes no more writes; then reads again if a read waits and may go on.
    ///
    /// A client that sends requests and never reads the answers so stops being read once the socket's
    /// outbound buffer passes its high-water mark (NIO's writability), instead of the answers piling up here.
    private func resume(context: ChannelHandlerContext) {
        var passed = false
        while context.channel.isWritable, let next = state.next(decide: decide) {
            switch next {
            case .part(let action): passed = perform(action, context: context) || passed
            case .other(let inbound, let before):
                deliver(inbound, after: before, context: context)
                passed = true
            }
        }
        // Parts passed on outside a read need their read-complete too (Hummingbird's stream yields on it).
        if passed { context.fireChannelReadComplete() }
        if readPending, state.mayRead, context.channel.isWritable {
            readPending = false
            context.read()
        }
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        if context.channel.isWritable { resume(context: context) }
        context.fireChannelWritabilityChanged()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { state.responseEnded() }
        context.write(data, promise: promise)
    }

    func read(context: ChannelHandlerContext) {
        guard state.mayRead, context.channel.isWritable else {
            readPending = true
            return
        }
        context.read()
    }
}

extension Gateway {
    /// The call `head` asks for if the shortcut may answer it as the router would, else `nil` (the router then
    /// answers it, or its error).
    func shortcut(_ head: HTTPRequest) -> ActorCall? {
        guard head.method == .post, let path = head.path,
            head.headerFields[.expect] == nil, head.headerFields[.transferEncoding] == nil,
            let length = head.headerFields[.contentLength].flatMap(Int.init),
            head.headerFields[.connection]?.lowercased() != "close"
        else { return nil }
        return shortcut(
            target: path, contentLength: length, authorization: head.headerFields[.authorization],
            idempotencyKey: head.headerFields[.idempotencyKey], timeoutHeader: head.headerFields[.plexTimeout])
    }

    /// The call a `POST` to `target` with these fields asks for if a shortcut may answer it as the router would,
    /// else `nil`: the decision both shortcuts share (``ShortcutHandler`` from NIOHTTP1's parts,
    /// ``PlainHTTP1Handler`` from the raw head).
    func shortcut(
        target: String, contentLength: Int, authorization: String?, idempotencyKey: String?, timeoutHeader: String?
    ) -> ActorCall? {
        guard node.tracer == nil, contentLength <= configuration.maximumBodySize else { return nil }
        if let token = configuration.bearerToken,
            !GatewayMiddleware<GatewayRequestContext>.authorized(authorization, token: token)
        {
            return nil
        }
        // On the UTF-8 view: Character-wise search and comparison would cost more than the rest of the decision.
        let utf8 = target.utf8
        var timeout: String?
        var route = utf8[...]
        if let question = utf8.firstIndex(of: UInt8(ascii: "?")) {
            route = utf8[..<question]
            let query = utf8[utf8.index(after: question)...]
            let name = "timeout_ms=".utf8
            guard query.starts(with: name) else { return nil }
            let value = query.dropFirst(name.count)
            guard !value.isEmpty, value.allSatisfy({ (48...57).contains($0) }) else { return nil }
            timeout = String(Substring(value))
        }
        let segments = route.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
        guard segments.count == 5, segments[0].isEmpty, segments[1].elementsEqual("v1".utf8),
            segments[2].elementsEqual("actors".utf8), !segments[3].isEmpty, !segments[4].isEmpty,
            let type = Substring(segments[3]).percentDecoded, let key = Substring(segments[4]).percentDecoded
        else { return nil }
        return try? actorCall(
            type: type, key: key, idempotencyKey: idempotencyKey, timeout: timeout, timeoutHeader)
    }

    /// Makes `call` with `body` in a task on `executor` (the connection's event loop, where this is called) and
    /// gives `answer` the reply or the error to answer, on that loop. No promise: the task ends on the loop and
    /// answers there itself.
    func start(
        _ call: ActorCall, body: [UInt8], on executor: EventLoopTaskExecutor,
        then answer: @escaping (Result<[UInt8], GatewayError>) -> Void
    ) {
        let answer = NIOLoopBound(answer, eventLoop: executor.eventLoop)
        Task(executorPreference: executor) {
            let result: Result<[UInt8], GatewayError>
            do throws(GatewayError) {
                result = .success(try await self.perform(call, body: body, on: executor))
            } catch {
                result = .failure(error)
            }
            // The task prefers the loop's executor, so it normally ends there.
            if executor.eventLoop.inEventLoop {
                answer.value(result)
            } else {
                executor.eventLoop.execute { answer.value(result) }
            }
        }
    }

    /// A shortcut's answer to a call's outcome, as the router gives it: the reply as JSON, or the error's status,
    /// fields and body; with `Content-Length` and `Date`.
    static func shortcutAnswer(_ result: Result<[UInt8], GatewayError>, date: String) -> (
        status: HTTPResponse.Status, fields: HTTPFields, body: [UInt8]
    ) {
        var fields: HTTPFields
        let status: HTTPResponse.Status
        let body: [UInt8]
        switch result {
        case .success(let reply):
            fields = [.contentType: "application/json"]
            status = .ok
            body = reply
        case .failure(let error):
            // The router's error response, field for field.
            fields = error.headers
            status = error.status
            body = error.body
        }
        fields[.contentLength] = "\(body.count)"
        fields[.date] = date
        return (status, fields, body)
    }
}
