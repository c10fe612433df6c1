internal import PlexTransport

#if canImport(Glibc)
    internal import Glibc
    private let streamType = Int32(SOCK_STREAM.rawValue)
    private let sendFlags = Int32(MSG_NOSIGNAL)
    private let shutdownWrite = Int32(SHUT_WR)
    private let shutdownBoth = Int32(SHUT_RDWR)
#elseif canImport(Darwin)
    internal import Darwin
    private let streamType = SOCK_STREAM
    private let sendFlags: Int32 = 0
    private let shutdownWrite = SHUT_WR
    private let shutdownBoth = SHUT_RDWR
#endif

/// Blocking socket calls for the test kit's proxy: plain POSIX, no event loop. Every socket is close-on-exec
/// and never raises SIGPIPE.
enum LoopbackSocket {
    /// Listens on `host:port` (port 0 picks one); returns the descriptor and the port bound.
    static func makeListener(host: String, port: Int) throws(TCPProxy.Failure) -> (Int32, Int) {
        let info = try resolve(host: host, port: port, passive: true)
        defer { freeaddrinfo(info) }
        let descriptor = socket(info.pointee.ai_family, streamType, 0)
        guard descriptor >= 0 else { throw TCPProxy.Failure(operation: "socket", code: errno) }
        prepare(descriptor)
        var one: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        guard bind(descriptor, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let code = errno
            close(descriptor)
            throw TCPProxy.Failure(operation: "bind \(host):\(port)", code: code)
        }
        guard listen(descriptor, 128) == 0 else {
            let code = errno
            close(descriptor)
            throw TCPProxy.Failure(operation: "listen \(host):\(port)", code: code)
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard named == 0 else {
            let code = errno
            close(descriptor)
            throw TCPProxy.Failure(operation: "getsockname", code: code)
        }
        return (descriptor, boundPort(storage))
    }

    /// Connects to `address` (blocking); returns the descriptor.
    static func dial(_ address: PeerAddress) throws(TCPProxy.Failure) -> Int32 {
        let info = try resolve(host: address.host, port: address.port, passive: false)
        defer { freeaddrinfo(info) }
        let descriptor = socket(info.pointee.ai_family, streamType, 0)
        guard descriptor >= 0 else { throw TCPProxy.Failure(operation: "socket", code: errno) }
        prepare(descriptor)
        while connect(descriptor, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 {
            let code = errno
            if code == EINTR { continue }
            close(descriptor)
            throw TCPProxy.Failure(operation: "connect \(address)", code: code)
        }
        return descriptor
    }

    /// Accepts one connection waiting on `listener`, if there is one.
    static func acceptConnection(_ listener: Int32) -> Int32? {
        let descriptor = accept(listener, nil, nil)
        guard descriptor >= 0 else { return nil }
        prepare(descriptor)
        return descriptor
    }

    /// Waits up to `milliseconds` for `descriptor` to have bytes, an end of stream or an error to read.
    static func waitReadable(_ descriptor: Int32, milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, milliseconds) > 0
    }

    /// Waits `milliseconds` (a stalled relay's pace).
    static func pause(milliseconds: Int32) {
        _ = poll(nil, 0, milliseconds)
    }

    /// Reads what is there into `buffer`: the count, 0 at the end of the stream, -1 on error (`errno`).
    static func receive(_ descriptor: Int32, into buffer: inout [UInt8]) -> Int {
        buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
    }

    /// Writes all of `bytes`; `false` if the socket failed.
    static func sendAll(_ descriptor: Int32, _ bytes: ArraySlice<UInt8>) -> Bool {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            let count = bytes[offset...].withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, sendFlags) }
            if count > 0 {
                offset += count
            } else if count < 0 && errno == EINTR {
                continue
            } else {
                return false
            }
        }
        return true
    }

    /// Whether the last failed call's `errno` only asks to try again.
    static var isTransientError: Bool { errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK }

    /// Ends the writing direction: the other side reads the end of the stream.
    static func closeWriting(_ descriptor: Int32) {
        _ = shutdown(descriptor, shutdownWrite)
    }

    /// Makes the eventual `close` reset the connection, and wakes every thread blocked on the socket.
    static func reset(_ descriptor: Int32) {
        var linger = linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<linger>.size))
        _ = shutdown(descriptor, shutdownBoth)
    }

    /// Wakes a thread waiting on a listening socket.
    static func wake(_ descriptor: Int32) {
        _ = shutdown(descriptor, shutdownBoth)
    }

    private static func prepare(_ descriptor: Int32) {
        _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC)
        #if canImport(Darwin)
            var one: Int32 = 1
            _ = setsockopt(descriptor, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
        #endif
    }

    private static func resolve(host: String, port: Int, passive: Bool) throws(TCPProxy.Failure)
        -> UnsafeMutablePointer<addrinfo>
    {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = streamType
        hints.ai_flags = AI_NUMERICSERV | (passive ? AI_PASSIVE : 0)
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let result else {
            throw TCPProxy.Failure(operation: "resolve \(host):\(port)", code: EINVAL)
        }
        return result
    }

    private static func boundPort(_ storage: sockaddr_storage) -> Int {
        var storage = storage
        let family = Int32(storage.ss_family)
        return withUnsafePointer(to: &storage) { pointer in
            if family == AF_INET6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) {
                    Int(UInt16(bigEndian: $0.pointee.sin6_port))
                }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                Int(UInt16(bigEndian: $0.pointee.sin_port))
            }
        }
    }
}
