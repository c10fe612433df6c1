import NIOCore
import NIOHPACK
import NIOHTTP2
import Testing

@testable import PlexGateway

@Suite("HTTP gateway: which h2c frames the frame-level shortcut keeps")
struct HTTP2ShortcutStateTests {
    /// The state under test, in a box so `#expect` can call its mutating members.
    final class State {
        var value = HTTP2ShortcutState<String>()
        var count: Int { value.count }
        func received(_ frame: HTTP2Frame, decide: (HPACKHeaders) -> (String, Int)?)
            -> HTTP2ShortcutState<String>.Action
        {
            value.received(frame, decide: decide)
        }
        func answering(_ id: HTTP2StreamID) -> Bool { value.answering(id) }
        func closed(_ id: HTTP2StreamID) { value.closed(id) }
        func closedAll() { value.closedAll() }
    }

    /// Takes a POST whose path starts with `/fast`; its length is the `content-length`.
    static func decide(_ headers: HPACKHeaders) -> (String, Int)? {
        guard let path = headers.first(name: ":path"), path.hasPrefix("/fast"),
            let length = headers.first(name: "content-length").flatMap(Int.init)
        else { return nil }
        return (path, length)
    }

    static func headers(_ stream: Int, _ path: String, length: Int, end: Bool = false) -> HTTP2Frame {
        let block = HPACKHeaders([(":method", "POST"), (":path", path), ("content-length", "\(length)")])
        return HTTP2Frame(streamID: HTTP2StreamID(stream), payload: .headers(.init(headers: block, endStream: end)))
    }

    static func data(_ stream: Int, _ text: String, end: Bool = false, padding: Int? = nil) -> HTTP2Frame {
        HTTP2Frame(
            streamID: HTTP2StreamID(stream),
            payload: .data(.init(data: .byteBuffer(ByteBuffer(string: text)), endStream: end, paddingBytes: padding)))
    }

    static func trailers(_ stream: Int) -> HTTP2Frame {
        HTTP2Frame(
            streamID: HTTP2StreamID(stream),
            payload: .headers(.init(headers: HPACKHeaders([("x-trailer", "1")]), endStream: true)))
    }

    @Test("a stream the shortcut takes stays with it: its body in order, then the call, answered once")
    func takesAStream() {
        let state = State()
        #expect(state.received(Self.headers(1, "/fast/a", length: 4), decide: Self.decide) == .drop)
        #expect(state.received(Self.data(1, "ab"), decide: Self.decide) == .windowUpdate(2))
        #expect(
            state.received(Self.data(1, "cd", end: true), decide: Self.decide)
                == .call("/fast/a", .init(string: "abcd")))
        #expect(state.count == 1)
        #expect(state.answering(HTTP2StreamID(1)), "the stream waits for its answer")
        #expect(!state.answering(HTTP2StreamID(1)), "answered once")
        #expect(state.count == 0)
    }

    @Test("a stream it does not take passes whole, trailers included; the connection's frames pass")
    func passesOthers() {
        let state = State()
        #expect(state.received(Self.headers(1, "/slow", length: 2), decide: Self.decide) == .pass)
        #expect(state.received(Self.data(1, "ab"), decide: Self.decide) == .pass)
        // A second HEADERS frame on a stream it passed is that stream's trailers, never a new request.
        #expect(state.received(Self.headers(1, "/fast/x", length: 0, end: true), decide: Self.decide) == .pass)
        let settings = HTTP2Frame(streamID: .rootStream, payload: .settings(.settings([])))
        #expect(state.received(settings, decide: Self.decide) == .pass)
        let ping = HTTP2Frame(streamID: .rootStream, payload: .ping(HTTP2PingData(withInteger: 7), ack: false))
        #expect(state.received(ping, decide: Self.decide) == .pass)
        #expect(state.count == 0)
    }

    @Test("a request without a body is called at its HEADERS frame; trailers end a body")
    func noBodyAndTrailers() {
        let state = State()
        #expect(
            state.received(Self.headers(1, "/fast/a", length: 0, end: true), decide: Self.decide)
                == .call("/fast/a", ByteBuffer()))
        #expect(state.received(Self.headers(3, "/fast/b", length: 2), decide: Self.decide) == .drop)
        #expect(state.received(Self.data(3, "xy"), decide: Self.decide) == .windowUpdate(2))
        #expect(state.received(Self.trailers(3), decide: Self.decide) == .call("/fast/b", .init(string: "xy")))
    }

    @Test("the window it gives back counts padding and the pad-length octet")
    func padding() {
        let state = State()
        _ = state.received(Self.headers(1, "/fast/a", length: 5), decide: Self.decide)
        #expect(state.received(Self.data(1, "abc", padding: 10), decide: Self.decide) == .windowUpdate(14))
        #expect(state.received(Self.data(1, "", padding: nil), decide: Self.decide) == .drop, "an empty frame")
        #expect(
            state.received(Self.data(1, "de", end: true, padding: 3), decide: Self.decide)
                == .call("/fast/a", .init(string: "abcde")))
    }

    @Test("a body beyond its content-length, or short of it at the end, resets the stream")
    func wrongLengths() {
        let state = State()
        _ = state.received(Self.headers(1, "/fast/a", length: 3), decide: Self.decide)
        #expect(state.received(Self.data(1, "abcd"), decide: Self.decide) == .reset)
        #expect(state.count == 0)
        _ = state.received(Self.headers(3, "/fast/b", length: 3), decide: Self.decide)
        #expect(state.received(Self.data(3, "ab", end: true), decide: Self.decide) == .reset)
        #expect(state.count == 0)
        // A body announced but the stream ended at its HEADERS: left to NIOHTTP2 and the router.
        #expect(state.received(Self.headers(5, "/fast/c", length: 3, end: true), decide: Self.decide) == .pass)
    }

    @Test("a stream reset or closed before its answer gets none")
    func resetAndClosed() {
        let state = State()
        _ = state.received(Self.headers(1, "/fast/a", length: 1), decide: Self.decide)
        let reset = HTTP2Frame(streamID: HTTP2StreamID(1), payload: .rstStream(.cancel))
        #expect(state.received(reset, decide: Self.decide) == .drop)
        #expect(state.count == 0)
        #expect(state.received(Self.data(1, "x", end: true), decide: Self.decide) == .pass, "forgotten")

        #expect(
            state.received(Self.headers(3, "/fast/b", length: 0, end: true), decide: Self.decide)
                == .call("/fast/b", ByteBuffer()))
        state.closed(HTTP2StreamID(3))
        #expect(!state.answering(HTTP2StreamID(3)))

        #expect(
            state.received(Self.headers(5, "/fast/c", length: 0, end: true), decide: Self.decide)
                == .call("/fast/c", ByteBuffer()))
        state.closedAll()
        #expect(!state.answering(HTTP2StreamID(5)))
    }

    @Test("streams interleave: each keeps its own body")
    func interleaved() {
        let state = State()
        _ = state.received(Self.headers(1, "/fast/a", length: 2), decide: Self.decide)
        _ = state.received(Self.headers(3, "/fast/b", length: 2), decide: Self.decide)
        #expect(state.received(Self.headers(5, "/slow", length: 1), decide: Self.decide) == .pass)
        _ = state.received(Self.data(3, "b"), decide: Self.decide)
        _ = state.received(Self.data(1, "a"), decide: Self.decide)
        #expect(state.received(Self.data(5, "s", end: true), decide: Self.decide) == .pass)
        #expect(
            state.received(Self.data(1, "A", end: true), decide: Self.decide) == .call("/fast/a", .init(string: "aA")))
        #expect(
            state.received(Self.data(3, "B", end: true), decide: Self.decide) == .call("/fast/b", .init(string: "bB")))
    }
}

@Suite("HTTP gateway: when an HTTP/2 connection ends")
struct HTTP2ConnectionLifeTests {
    /// The value under test, in a box so `#expect` can call its mutating members.
    final class Life {
        var value = HTTP2ConnectionLife()
        func opened(_ id: Int) { value.opened(HTTP2StreamID(id)) }
        func closed(_ id: Int) -> HTTP2ConnectionLife.Next { value.closed(HTTP2StreamID(id)) }
        func quiesce() -> HTTP2ConnectionLife.Next { value.quiesce() }
        func refuses(_ id: Int) -> Bool { value.refuses(HTTP2StreamID(id)) }
        func requestEnded(_ id: Int) { value.requestEnded(HTTP2StreamID(id)) }
        func clientClosed() -> ([Int], HTTP2ConnectionLife.Next) {
            let (incomplete, next) = value.clientClosed()
            return (incomplete.map { Int($0) }, next)
        }
    }

    @Test("when the client closes its side, the streams whose request it never ended are to be reset, then it ends")
    func clientClosed() {
        let life = Life()
        life.opened(1)
        life.requestEnded(1)
        life.opened(3)
        life.opened(5)
        life.requestEnded(5)
        life.opened(7)
        let (incomplete, next) = life.clientClosed()
        #expect(incomplete == [3, 7])
        #expect(next == .nothing, "streams are open")
        #expect(life.refuses(9), "nothing opens any more")
        #expect(life.closed(3) == .nothing && life.closed(7) == .nothing && life.closed(1) == .nothing)
        #expect(life.closed(5) == .end)
        let idle = Life()
        idle.opened(1)
        idle.requestEnded(1)
        #expect(idle.closed(1) == .idle)
        #expect(idle.clientClosed() == ([], .end), "no stream open: it ends at once")
        // An END_STREAM after its stream closed (answered first) is not remembered: stream 5 is reset, not 3.
        let late = Life()
        late.opened(3)
        _ = late.closed(3)
        late.requestEnded(3)
        late.opened(5)
        #expect(late.value.remembered == 0)
        #expect(late.clientClosed().0 == [5])
    }

    @Test("with no stream open the idle timer runs; a stop then ends it at once")
    func idle() {
        let life = Life()
        life.opened(1)
        life.opened(3)
        #expect(life.closed(1) == .nothing, "one still open")
        #expect(life.closed(3) == .idle)
        #expect(life.closed(3) == .nothing, "a stream it no longer has")
        #expect(life.value.lastTaken == HTTP2StreamID(3))
        #expect(life.quiesce() == .end)
    }

    @Test("a stop waits for the streams opened before it, refuses the ones after, and names the last it took")
    func stop() {
        let life = Life()
        life.opened(1)
        life.opened(3)
        #expect(!life.refuses(5), "before the stop every stream is taken")
        #expect(life.quiesce() == .nothing, "two streams still run")
        #expect(!life.refuses(3) && !life.refuses(0), "a running stream's frames, and the connection's, go on")
        #expect(life.refuses(5) && life.refuses(7))
        // A refused stream opens and closes in NIOHTTP2 all the same; it changes nothing the GOAWAY says.
        life.opened(5)
        #expect(life.closed(5) == .nothing)
        #expect(life.closed(1) == .nothing)
        #expect(life.closed(3) == .end)
        #expect(life.value.lastTaken == HTTP2StreamID(3))
        #expect(life.quiesce() == .end, "a second stop changes nothing")
        #expect(life.value.lastTaken == HTTP2StreamID(3))
    }
}
