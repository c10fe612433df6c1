import Foundation
import PlexTestKit
import PlexTransport
import Synchronization
import Testing

#if canImport(Glibc)
    import Glibc
    private let streamType = Int32(SOCK_STREAM.rawValue)
    private let noSignal = Int32(MSG_NOSIGNAL)
    private let systemClose = Glibc.close
    private let systemSend = Glibc.send
#elseif canImport(Darwin)
    import Darwin
    private let streamType = SOCK_STREAM
    private let noSignal: Int32 = 0
    private let systemClose = Darwin.close
    private let systemSend = Darwin.send
#endif

/// The proxy forwards both ways, cuts all connections or one dialer's (drop: reset; blackhole: stall and
/// resume with nothing lost), heals, and stops.
@Suite("TCPProxy", .timeLimit(.minutes(1)))
struct TCPProxyTests {
    @Test("forwards bytes both ways and passes on the end of the stream")
    func forwards() async throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let proxy = try TCPProxy(target: echo.address)
        defer { proxy.stop() }
        let client = try TestSocket(connectingTo: proxy.address)
        defer { client.close() }
        let message = Array(repeating: UInt8(ascii: "x"), count: 200_000) + Array("end".utf8)
        try client.send(message)
        #expect(try await client.receive(count: message.count) == message)
        client.closeWriting()
        try await client.expectEnd()
        try await eventually("the connection is gone", within: .seconds(5)) { proxy.openConnections == 0 }
        #expect(proxy.acceptedConnections == 1)
    }

    @Test("a drop cut resets open connections and closes new ones; a heal forwards again")
    func dropAndHeal() async throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let proxy = try TCPProxy(target: echo.address)
        defer { proxy.stop() }
        let open = try TestSocket(connectingTo: proxy.address)
        defer { open.close() }
        try open.send(Array("before".utf8))
        #expect(try await open.receive(count: 6) == Array("before".utf8))

        proxy.cut()
        #expect(proxy.isCut)
        try await open.expectEnd()
        let refused = try TestSocket(connectingTo: proxy.address)
        defer { refused.close() }
        try await refused.expectEnd()
        try await eventually("the target saw both closed", within: .seconds(5)) { echo.openConnections == 0 }

        proxy.heal()
        #expect(!proxy.isCut)
        let healed = try TestSocket(connectingTo: proxy.address)
        defer { healed.close() }
        try healed.send(Array("after".utf8))
        #expect(try await healed.receive(count: 5) == Array("after".utf8))
    }

    @Test("a blackhole stalls open and new connections without losing a byte; a heal delivers everything")
    func blackhole() async throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let proxy = try TCPProxy(target: echo.address)
        defer { proxy.stop() }
        let open = try TestSocket(connectingTo: proxy.address)
        defer { open.close() }
        try open.send(Array("one".utf8))
        #expect(try await open.receive(count: 3) == Array("one".utf8))

        proxy.cut(.blackhole)
        let held = try TestSocket(connectingTo: proxy.address)
        defer { held.close() }
        try open.send(Array("two".utf8))
        try held.send(Array("three".utf8))
        // Nothing comes back while the cut stands (half a second is ample on loopback; the echo answers in
        // microseconds when the proxy forwards).
        #expect(open.available(within: .milliseconds(500)) == false)
        #expect(held.available(within: .milliseconds(50)) == false)
        #expect(echo.acceptedConnections == 1, "a held connection is not connected to the target")

        proxy.heal()
        #expect(try await open.receive(count: 3) == Array("two".utf8))
        #expect(try await held.receive(count: 5) == Array("three".utf8))
        #expect(echo.acceptedConnections == 2)
    }

    @Test("a cut of one dialer cuts only its connections, open and new")
    func cutOneDialer() async throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        // Each test dialer introduces itself with a line: "a\n" or "b\n".
        let proxy = try TCPProxy(target: echo.address) { bytes in
            guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else { return .needMoreBytes }
            return .dialer(String(decoding: bytes[..<newline], as: UTF8.self))
        }
        defer { proxy.stop() }
        let a = try TestSocket(connectingTo: proxy.address)
        let b = try TestSocket(connectingTo: proxy.address)
        defer {
            a.close()
            b.close()
        }
        try a.send(Array("a\nhello".utf8))
        try b.send(Array("b\nhello".utf8))
        #expect(try await a.receive(count: 7) == Array("a\nhello".utf8), "the introduction is forwarded too")
        #expect(try await b.receive(count: 7) == Array("b\nhello".utf8))
        #expect(proxy.openDialers == ["a", "b"])

        proxy.cut(from: "a")
        try await a.expectEnd()
        try b.send(Array("still".utf8))
        #expect(try await b.receive(count: 5) == Array("still".utf8))
        let newA = try TestSocket(connectingTo: proxy.address)
        defer { newA.close() }
        try newA.send(Array("a\nagain".utf8))
        try await newA.expectEnd()
        let newB = try TestSocket(connectingTo: proxy.address)
        defer { newB.close() }
        try newB.send(Array("b\nnew".utf8))
        #expect(try await newB.receive(count: 5) == Array("b\nnew".utf8))

        proxy.heal(from: "a")
        let healed = try TestSocket(connectingTo: proxy.address)
        defer { healed.close() }
        try healed.send(Array("a\nback".utf8))
        #expect(try await healed.receive(count: 6) == Array("a\nback".utf8))
    }

    @Test("a cut of every connection also covers dialers that are named")
    func cutAllCoversDialers() async throws {
        let echo = try EchoServer()
        defer { echo.stop() }
        let proxy = try TCPProxy(target: echo.address) { _ in .dialer("x") }
        defer { proxy.stop() }
        proxy.cut(from: "y", .blackhole)
        proxy.cut()
        let socket = try TestSocket(connectingTo: proxy.address)
        defer { socket.close() }
        do {
            try socket.send(Array("hi".utf8))
        } catch let error as POSIXError where error.code == .EPIPE || error.code == .ECONNRESET {
            // The proxy closed the cut connection before the bytes left: it has ended already.
        }
        try await socket.expectEnd()
        proxy.heal(from: "y")
        #expect(proxy.isCut, "the cut of every connection stays")
    }

    @Test("a dialer whose target is down is closed; a stopped proxy refuses connections")
    func targetDownAndStop() async throws {
        let port = try LoopbackPort.unused()
        let proxy = try TCPProxy(target: PeerAddress(host: "127.0.0.1", port: port))
        let socket = try TestSocket(connectingTo: proxy.address)
        defer { socket.close() }
        try await socket.expectEnd()
        proxy.stop()
        try await eventually("the port is closed", within: .seconds(5)) {
            (try? TestSocket(connectingTo: proxy.address)).map { $0.close() } == nil
        }
    }
}

/// A blocking test socket with deadlines.
final class TestSocket: Sendable {
    let descriptor: Int32

    init(connectingTo address: PeerAddress) throws {
        descriptor = socket(AF_INET, streamType, 0)
        var address4 = sockaddr_in()
        address4.sin_family = sa_family_t(AF_INET)
        address4.sin_port = in_port_t(UInt16(address.port).bigEndian)
        address4.sin_addr.s_addr = inet_addr(address.host)
        let status = withUnsafePointer(to: &address4) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard status == 0 else {
            let code = errno
            _ = systemClose(descriptor)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
    }

    func send(_ bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { systemSend(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            offset += count
        }
    }

    /// Whether bytes (or the end of the stream) arrive within `within`.
    func available(within: Duration) -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        let milliseconds = within.components.seconds * 1000 + within.components.attoseconds / 1_000_000_000_000_000
        return poll(&entry, 1, Int32(milliseconds)) > 0
    }

    /// Reads exactly `count` bytes.
    func receive(count: Int, within: Duration = .seconds(10)) async throws -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        try await eventually("\(count) bytes arrive", within: within, poll: .milliseconds(1)) {
            while received.count < count && available(within: .zero) {
                let n = buffer.withUnsafeMutableBytes {
                    recv(descriptor, $0.baseAddress, min($0.count, count - received.count), 0)
                }
                guard n > 0 else { throw POSIXError(.ECONNRESET) }
                received += buffer[0..<n]
            }
            return received.count == count
        }
        return received
    }

    /// Waits for the end of the stream (or a reset).
    func expectEnd(within: Duration = .seconds(10)) async throws {
        var buffer = [UInt8](repeating: 0, count: 4096)
        try await eventually("the connection ends", within: within, poll: .milliseconds(1)) {
            guard available(within: .zero) else { return false }
            let n = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            return n <= 0
        }
    }

    func closeWriting() { _ = shutdown(descriptor, Int32(SHUT_WR)) }

    func close() { _ = systemClose(descriptor) }
}

/// An echo server on loopback: a thread per connection sends back what it reads, and closes when the
/// dialer does.
final class EchoServer: Sendable {
    let address: PeerAddress
    private let listener: Int32
    private let state = Mutex<(open: Int, accepted: Int, stopped: Bool)>((0, 0, false))

    init() throws {
        let port = try LoopbackPort.unused()
        let listener = socket(AF_INET, streamType, 0)
        var one: Int32 = 1
        _ = setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address4 = sockaddr_in()
        address4.sin_family = sa_family_t(AF_INET)
        address4.sin_port = in_port_t(UInt16(port).bigEndian)
        address4.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address4) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard bound == 0, listen(listener, 16) == 0 else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        self.listener = listener
        address = PeerAddress(host: "127.0.0.1", port: port)
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    var openConnections: Int { state.withLock { $0.open } }
    var acceptedConnections: Int { state.withLock { $0.accepted } }

    func stop() {
        state.withLock { $0.stopped = true }
        _ = shutdown(listener, Int32(SHUT_RDWR))
    }

    private func acceptLoop() {
        defer { _ = systemClose(listener) }
        while !state.withLock({ $0.stopped }) {
            var entry = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 50) > 0 else { continue }
            let connection = accept(listener, nil, nil)
            guard connection >= 0 else { continue }
            state.withLock {
                $0.open += 1
                $0.accepted += 1
            }
            let thread = Thread { [self] in
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = buffer.withUnsafeMutableBytes { recv(connection, $0.baseAddress, $0.count, 0) }
                    guard n > 0 else { break }
                    var offset = 0
                    while offset < n {
                        let sent = buffer[offset..<n].withUnsafeBytes {
                            systemSend(connection, $0.baseAddress, $0.count, noSignal)
                        }
                        guard sent > 0 else { break }
                        offset += sent
                    }
                }
                _ = systemClose(connection)
                state.withLock { $0.open -= 1 }
            }
            thread.start()
        }
    }
}
