internal import HTTPTypes
internal import NIOCore
internal import NIOHTTPTypes

/// Which requests on an HTTP/1.1 connection take the actor-call shortcut (``ShortcutHandler``) and which pass
/// on to Hummingbird's router, kept in order: a value that returns what to do, tested without sockets.
///
/// A request passes on unless the shortcut may take it (the handler's `decide` says so from its head). While a
/// passed request is unanswered, every part passes, including the heads of pipelined requests behind it, so
/// Hummingbird answers them in order. While the shortcut's call runs, later parts are held and read again once
/// its response is written.
struct ShortcutState<Call> {
    enum Action {
        /// Hand the part to the next handler (Hummingbird).
        case pass(HTTPRequestPart)
        /// The request is whole: run `call` with `body`; then ``answered()``.
        case call(Call, ByteBuffer)
        /// Nothing to do yet.
        case wait
    }

    private enum Mode {
        /// Between requests, none of them unanswered.
        case idle
        /// Reading the body of a request the shortcut takes.
        case collecting(Call, ByteBuffer)
        /// Running a request the shortcut took; later parts are held.
        case calling
    }

    private var mode = Mode.idle
    /// Requests passed on whose response has not ended yet.
    private(set) var unanswered = 0
    /// Whether parts of a passed request are still coming (its head passed, its end not yet).
    private var passingParts = false
    /// Parts that arrived while a call ran, oldest first.
    private(set) var held: [HTTPRequestPart] = []

    /// Whether a call runs (reads from the socket wait until it is answered).
    var isCalling: Bool { if case .calling = mode { true } else { false } }

    /// A part arrived. `decide` says whether the shortcut takes a request (from its head) and what to call.
    mutating func read(_ part: HTTPRequestPart, decide: (HTTPRequest) -> Call?) -> Action {
        switch mode {
        case .calling:
            held.append(part)
            return .wait
        case .collecting(let call, var body):
            switch part {
            case .head:
                // A head inside a body cannot come from NIO's decoder; pass rather than lose it.
                return .pass(part)
            case .body(var chunk):
                mode = .idle  // drop the buffer's second reference before appending
                body.writeBuffer(&chunk)
                mode = .collecting(call, body)
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
                mode = .collecting(call, ByteBuffer())
                return .wait
            }
            unanswered += 1
            passingParts = true
            return .pass(part)
        }
    }

    /// A passed request's response ended (its `.end` went out).
    mutating func responseEnded() {
        if unanswered > 0 { unanswered -= 1 }
    }

    /// The call's response was written: returns the parts held meanwhile, to read again in order.
    mutating func answered() -> [HTTPRequestPart] {
        mode = .idle
        defer { held = [] }
        return held
    }
}
