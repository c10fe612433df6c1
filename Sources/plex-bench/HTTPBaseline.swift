import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import PlexExamples
import PlexSpaces
import PlexTransport

/// The HTTP gateway benchmark's baselines (`scripts/bench-http.sh` runs them beside the gateway): a bare NIO
/// HTTP/1.1 pipeline (`NIOHTTP1`, no Hummingbird) that answers every request with a fixed JSON reply (`fixed`:
/// the ceiling of NIO and the kernel here), or that makes the same JSON actor call as the gateway's shortcut,
/// `PlexNode.ask(_:json:on:)` on the connection's loop (`actor`: what the call costs without Hummingbird); or
/// bare NIO with a minimal HTTP/1.1 parser of its own and the fixed reply (`raw`: the ceiling an HTTP path of our
/// own, without NIOHTTP1, could reach), or that parser making the JSON actor call (`raw-actor`: the ceiling of the
/// gateway's raw path with this call). Only `POST /v1/actors/{type}/{key}` is understood; anything else gets the
/// fixed reply.
struct HTTPBaseline: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "http-baseline", abstract: "A bare NIO HTTP/1.1 server for the gateway benchmark's baselines.")

    enum Mode: String, ExpressibleByArgument {
        case fixed, actor, raw
        case rawActor = "raw-actor"
    }

    @Option(
        help:
            "fixed: a fixed reply; actor: the counter's JSON call, as the gateway makes it; raw: a fixed reply without NIOHTTP1 (a minimal parser of its own); raw-actor: that parser making the counter's JSON call."
    )
    var mode: Mode = .fixed

    @Option(
        help:
            "The node's data directory (actor and raw-actor modes); default: a scratch directory removed at a normal exit."
    )
    var dataDir: String?

    func run() async throws {
        let node: PlexNode? =
            mode == .actor || mode == .rawActor
            ? try await PlexNode.start(
                NodeConfiguration(dataDirectory: dataDir ?? temporaryDirectory("http-baseline"), secret: benchSecret),
                logger: quietLogger()
            ) { $0.registerExamples() }
            : nil
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if mode == .raw {
                        try channel.pipeline.syncOperations.addHandler(RawBaselineHandler())
                        return
                    }
                    if mode == .rawActor, let node {
                        try channel.pipeline.syncOperations.addHandler(
                            RawActorBaselineHandler(node: node, loop: channel.eventLoop))
                        return
                    }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(BaselineHandler(node: node, loop: channel.eventLoop))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        // The same ready line shape as `plex node`, so the script finds the address the same way.
        let ready = #"{"event":"ready","http":"127.0.0.1:\#(server.localAddress?.port ?? 0)"}"# + "\n"
        FileHandle.standardOutput.write(Data(ready.utf8))
        try await server.closeFuture.get()
    }
}

/// Answers each request once its end arrives: the fixed reply, or the actor's reply to the JSON body.
final class BaselineHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let fixed = Array(#"{"count":1}"#.utf8)

    let node: PlexNode?
    let executor: EventLoopTaskExecutor
    private var path = ""
    private var body: ByteBuffer?

    init(node: PlexNode?, loop: any EventLoop) {
        self.node = node
        self.executor = EventLoopTaskExecutor(eventLoop: loop)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            path = head.uri
            body = nil
        case .body(var part):
            if body == nil { body = part } else { body!.writeBuffer(&part) }
        case .end:
            let segments = path.split(separator: "/")
            guard let node, segments.count == 4, segments[0] == "v1", segments[1] == "actors" else {
                return respond(Self.fixed, context: context)
            }
            let id = ActorID(typeName: String(segments[2]), key: String(segments[3]))
            let json = body.map { Array($0.readableBytesView) } ?? []
            ask(node, id, json: json, on: executor).assumeIsolated().whenComplete { result in
                self.respond((try? result.get()) ?? Array(#"{"error":true}"#.utf8), context: context)
            }
        }
    }

    private func respond(_ reply: [UInt8], context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: "\(reply.count)")
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: reply)))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

/// The `raw` baseline: HTTP/1.1 without NIOHTTP1, the ceiling an HTTP path of our own could reach here. It finds
/// each request's end (its head's blank line, then `Content-Length` bytes), and answers every complete request
/// in a read with one fixed reply, all in one write. Only what the benchmark sends is understood: no chunked
/// bodies, no header folding, no validation.
final class RawBaselineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let reply = Array(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"count\":1}".utf8)
    private var pending = ByteBuffer()

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        pending.writeBuffer(&bytes)
        var answers = 0
        while let length = Self.requestLength(pending.readableBytesView) {
            pending.moveReaderIndex(forwardBy: length)
            answers += 1
        }
        pending.discardReadBytes()
        guard answers > 0 else { return }
        var out = context.channel.allocator.buffer(capacity: Self.reply.count * answers)
        for _ in 0..<answers { out.writeBytes(Self.reply) }
        context.writeAndFlush(wrapOutboundOut(out), promise: nil)
    }

    /// The length of the first whole request in `view`, or `nil` if it has not all arrived.
    static func requestLength(_ view: ByteBufferView) -> Int? {
        view.withContiguousStorageIfAvailable { bytes -> Int? in
            var i = 0
            var body = 0
            while i + 3 < bytes.count {
                if bytes[i] == 13 && bytes[i + 1] == 10 {
                    if bytes[i + 2] == 13 && bytes[i + 3] == 10 {
                        let total = i + 4 + body
                        return bytes.count >= total ? total : nil
                    }
                    // A header line starts at i + 2: Content-Length, in any case, gives the body's length.
                    let name = Array("content-length:".utf8)
                    var j = 0
                    while j < name.count, i + 2 + j < bytes.count, bytes[i + 2 + j] | 0x20 == name[j] { j += 1 }
                    if j == name.count {
                        var k = i + 2 + j
                        body = 0
                        while k < bytes.count, bytes[k] == 32 { k += 1 }
                        while k < bytes.count, bytes[k] >= 48, bytes[k] <= 57 {
                            body = body * 10 + Int(bytes[k] - 48)
                            k += 1
                        }
                    }
                }
                i += 1
            }
            return nil
        } ?? nil
    }
}

/// The `raw-actor` baseline: the `raw` parser making the counter's JSON call for each request, one at a time per
/// connection (as wrk sends them), on the connection's loop: what the gateway's call could cost on an HTTP path
/// of its own.
final class RawActorBaselineHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    let node: PlexNode
    let executor: EventLoopTaskExecutor
    private var pending = ByteBuffer()
    private var busy = false

    init(node: PlexNode, loop: any EventLoop) {
        self.node = node
        self.executor = EventLoopTaskExecutor(eventLoop: loop)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        pending.writeBuffer(&bytes)
        next(context: context)
    }

    private func next(context: ChannelHandlerContext) {
        guard !busy, let length = RawBaselineHandler.requestLength(pending.readableBytesView) else { return }
        let view = pending.readableBytesView
        let request = Array(view.prefix(length))
        pending.moveReaderIndex(forwardBy: length)
        pending.discardReadBytes()
        // The path: between the first and second spaces; the body: after the blank line.
        let target = request.firstIndex(of: 32).flatMap { space in
            request[(space + 1)...].firstIndex(of: 32).map { request[(space + 1)..<$0] }
        }
        let segments = target?.split(separator: UInt8(ascii: "/")) ?? []
        guard segments.count == 4 else {
            context.writeAndFlush(wrapOutboundOut(ByteBuffer(bytes: RawBaselineHandler.reply)), promise: nil)
            return next(context: context)
        }
        var body = 0
        var i = 0
        while i + 3 < request.count {
            if request[i] == 13, request[i + 1] == 10, request[i + 2] == 13, request[i + 3] == 10 {
                body = i + 4
                break
            }
            i += 1
        }
        let id = ActorID(
            typeName: String(decoding: segments[2], as: UTF8.self), key: String(decoding: segments[3], as: UTF8.self))
        let json = Array(request[body...])
        busy = true
        ask(node, id, json: json, on: executor).assumeIsolated().whenComplete { result in
            let reply = (try? result.get()) ?? Array(#"{"error":true}"#.utf8)
            var out = context.channel.allocator.buffer(capacity: 128 + reply.count)
            out.writeString(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(reply.count)\r\n\r\n")
            out.writeBytes(reply)
            context.writeAndFlush(self.wrapOutboundOut(out), promise: nil)
            self.busy = false
            self.next(context: context)
        }
    }
}

/// The JSON call `id` with `json`, as the gateway makes it: in a task on the connection's loop.
func ask(_ node: PlexNode, _ id: ActorID, json: [UInt8], on executor: EventLoopTaskExecutor) -> EventLoopFuture<[UInt8]>
{
    let promise = executor.eventLoop.makePromise(of: [UInt8].self)
    Task(executorPreference: executor) {
        do {
            promise.succeed(try await node.ask(id, json: json, on: executor))
        } catch {
            promise.fail(error)
        }
    }
    return promise.futureResult
}
