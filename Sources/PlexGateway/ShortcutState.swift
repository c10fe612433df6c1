internal import DequeModule
internal import HTTPTypes
internal import NIOCore
internal import NIOHTTPTypes

/// Which requests on an HTTP/1.1 connection take the actor-call shortcut (``ShortcutHandler``) and which pass
/// on to Hummingbird's router, kept in order: a value that returns what to do, tested without sockets.
///
/// A request passes on unless the shortcut may take it (the handler's `decide` says so from its head). While a
/// passed request is unanswered, every part passes, including the heads of pipelined requests behind it, so
/// Hummingbird answers them in order. While the shortcut's call runs, everything that arrives (parts, but also
/// a parse error or the client's half-close) is held, and taken up again in order once the call is answered,
/// one at a time: a held request the shortcut takes holds the rest again without copying them.
struct ShortcutState<Call, Event> {
    enum Action {
        /// Hand the part to the next handler (Hummingbird).
        case pass(HTTPRequestPart)
        /// The request is whole: run `call` with `body`; then ``answered()``.
        case call(Call, ByteBuffer)
        /// Nothing to do yet.
        case wait
    }

    /// Something that arrived while a call ran.
    enum Held {
        case part(HTTPRequestPart)
        /// Anything else inbound (an error, an event), passed on in its place.
        case other(Event)
    }

    private enum Mode {
        /// Between requests, none of them unanswered.
        case idle
        /// Reading the body of a request the shortcut takes.
        case collecting(HTTPRequest, Call, ByteBuffer)
        /// Running a request the shortcut took; later parts are held.
        case calling
    }

    private var mode = Mode.idle
    /// Requests passed on whose response has not ended yet.
    private(set) var unanswered = 0
    /// Whether parts of a passed request are still coming (its head passed, its end not yet).
    private var passingParts = false
    /// What arrived while a call ran, oldest first.
    private var held = Deque<Held>()

    /// Whether a call runs (what arrives meanwhile is held until it is answered; see ``mayRead``).
    var isCalling: Bool { if case .calling = mode { true } else { false } }

    /// How many arrivals wait behind the call.
    var heldCount: Int { held.count }

    /// Whether to read more from the socket: always, except while a call runs with something held behind it.
    /// Reads go on while a call runs with nothing held (stopping them and starting again costs two `epoll_ctl`
    /// calls per request, measured 4 % of a gateway request), so a client that pipelines waits in its socket
    /// once one read's bytes are held, not in memory here.
    var mayRead: Bool { !isCalling || held.isEmpty }

    /// A part arrived. `decide` says whether the shortcut takes a request (from its head) and what to call.
    mutating func read(_ part: HTTPRequestPart, decide: (HTTPRequest) -> Call?) -> Action {
        if isCalling || !held.isEmpty {
            held.append(.part(part))
            return .wait
        }
        return take(part, decide: decide)
    }

    private mutating func take(_ part: HTTPRequestPart, decide: (HTTPRequest) -> Call?) -> Action {
        switch mode {
        case .calling:
            held.append(.part(part))
            return .wait
        case .collecting(let head, let call, var body):
            switch part {
            case .head:
                // A head inside a body cannot come from NIO's decoder; pass rather than lose it.
                return .pass(part)
            case .body(var chunk):
                mode = .idle  // drop the buffer's second reference before appending
                body.writeBuffer(&chunk)
                mode = .collecting(head, call, body)
                return .wait
            case .end:
                mode = .calling
                return .call(call, body)
            }
        case .idle:
            guard case .head(let head) = part else {
                if case .end = part { passingParts = false }
                return .pass(part)
            }
            if unanswered == 0, !passingParts, let call = decide(head) {
                mode = .collecting(head, call, ByteBuffer())
                return .wait
            }
            unanswered += 1
            passingParts = true
            return .pass(part)
        }
    }

    /// Something other than a part arrived (a parse error, the client's half-close). Returns whether to pass
    /// it on now, and the parts to pass on before it: a request being collected is handed to the router whole
    /// so far, which answers it as it would have.
    mutating func other(_ event: Event) -> (pass: Bool, before: [HTTPRequestPart]) {
        if isCalling || !held.isEmpty {
            held.append(.other(event))
            return (false, [])
        }
        guard case .collecting(let head, _, let body) = mode else { return (true, []) }
        mode = .idle
        unanswered += 1
        passingParts = true
        return (true, body.readableBytes > 0 ? [.head(head), .body(body)] : [.head(head)])
    }

    /// A passed request's response ended (its `.end` went out).
    mutating func responseEnded() {
        if unanswered > 0 { unanswered -= 1 }
    }

    /// The call's response was written: arrivals held meanwhile are taken up with ``next(decide:)``.
    mutating func answered() {
        mode = .idle
    }

    /// The connection is gone: nothing held will be answered.
    mutating func dropHeld() {
        held.removeAll()
    }

    /// Takes up the oldest held arrival, unless a call runs again: what to do with it, or `nil` when none waits.
    mutating func next(decide: (HTTPRequest) -> Call?) -> Next? {
        guard !isCalling, let first = held.popFirst() else { return nil }
        switch first {
        case .part(let part): return .part(take(part, decide: decide))
        case .other(let event):
            if case .collecting(let head, _, let body) = mode {
                mode = .idle
                unanswered += 1
                passingParts = true
                return .other(event, before: body.readableBytes > 0 ? [.head(head), .body(body)] : [.head(head)])
            }
            return .other(event, before: [])
        }
    }

    /// A held arrival taken up.
    enum Next {
        case part(Action)
        /// Pass `event` on, after `before`.
        case other(Event, before: [HTTPRequestPart])
    }
}
