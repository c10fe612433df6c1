import Foundation
import NIOCore
import PlexCluster
import PlexCore
import PlexTransport
import PlexWire

// The fuzz targets: what a node decodes from bytes it did not make. Each takes any bytes and must neither trap
// nor break an invariant (a decoded message survives a round trip; no handshake is established without the
// secret).

/// What the binary codec decodes in the fuzzer: every shape a message can take.
struct Sample: Codable, Equatable {
    enum Kind: Codable, Equatable {
        case plain
        case amount(Int64)
        case named(String, tags: [String])
    }
    var id: UInt64
    var name: String
    var ratio: Double?
    var kinds: [Kind]
    var counts: [String: Int32]
    var blob: Data
    var nested: [[Bool]]
}

let cluster = HandshakeConfiguration(clusterName: "fuzz", secret: Array("fuzz-secret-0123456789".utf8))
let local = PeerIdentity(role: .node, nodeID: NodeID(unchecked: "fuzz-node"), incarnation: 1, listenAddress: "h:1")

/// Cuts `data` into frames, as a connection's reader does; stops at the first bad or partial frame.
func frames(_ data: UnsafeRawBufferPointer) -> [Wire.Frame] {
    var buffer = ByteBuffer(bytes: data)
    var frames: [Wire.Frame] = []
    while let frame = try? FrameDecoder.decodeFrame(from: &buffer, maximumFrameSize: 1 << 20) { frames.append(frame) }
    return frames
}

func fuzzFrame(_ data: UnsafeRawBufferPointer) {
    for frame in frames(data) {
        switch frame.kind {
        case .call, .tell: _ = try? Wire.CallBody(reading: frame.body, flags: frame.flags)
        case .errorReply: _ = Wire.callError(from: frame)
        default: break
        }
    }
}

/// The input as one message, and the payload of each call or tell frame in it (seeds from the golden fixtures).
func codecInputs(_ data: UnsafeRawBufferPointer) -> [[UInt8]] {
    [Array(data)]
        + frames(data).compactMap { frame in
            guard frame.kind == .call || frame.kind == .tell,
                let body = try? Wire.CallBody(reading: frame.body, flags: frame.flags)
            else { return nil }
            return Array(body.payload.readableBytesView)
        }
}

func fuzzCodec(_ data: UnsafeRawBufferPointer) {
    let codec = BinaryMessageCodec()
    for bytes in codecInputs(data) {
        _ = try? codec.decode(String.self, from: bytes)
        _ = try? codec.decode([Int].self, from: bytes)
        guard let sample = try? codec.decode(Sample.self, from: bytes) else { continue }
        // What decodes must survive a round trip unchanged.
        guard let again = try? codec.decode(Sample.self, from: codec.encode(sample)), again == sample else {
            if sample.ratio.map({ $0.isNaN }) == true { continue }  // NaN is never equal to itself
            fatalError("a decoded Sample does not survive a round trip: \(sample)")
        }
    }
}

func fuzzControl(_ data: UnsafeRawBufferPointer) {
    // The input as a body, and the body of each frame in it (the fixtures are whole frames).
    let bodies = [ByteBuffer(bytes: data)] + frames(data).map(\.body)
    for body in bodies { _ = ControlPlaneDecoding.decodeEveryWay(Wire.Frame(kind: .gossip, body: body)) }
}

func fuzzHandshake(_ data: UnsafeRawBufferPointer) {
    // Whatever a stranger sends, neither side may consider it authenticated: that takes the secret.
    var acceptor = HandshakeStateMachine(side: .acceptor, configuration: cluster, local: local)
    var initiator = HandshakeStateMachine(side: .initiator, configuration: cluster, local: local)
    _ = initiator.start()
    for frame in frames(data) {
        for machine in [0, 1] {
            let actions = machine == 0 ? acceptor.receive(frame) : initiator.receive(frame)
            for case .established(let peer) in actions {
                fatalError("a handshake was established without the secret: \(peer)")
            }
        }
    }
}

/// What the JSON codec decodes in the fuzzer: the shapes a gateway request takes (no `Data` or `Date`, which its
/// fast paths always leave to Foundation).
struct JSONSample: Codable, Equatable {
    enum Kind: Codable, Equatable {
        case plain
        case amount(Int64)
        case named(String, tags: [String])
    }
    var id: UInt64
    var name: String
    var ratio: Double?
    var small: Int8?
    var kinds: [Kind]
    var counts: [String: Int32]
    var nested: [[Bool]]
}

/// The JSON codec (its fast paths of our own, Foundation for the rest) against Foundation alone: the same value
/// or the same failure for any text, and the same bytes written back.
func fuzzJSON(_ data: UnsafeRawBufferPointer) {
    check(JSONSample.self, data)
    check([String: Int].self, data)
    check([Int: String].self, data)
    check([Double].self, data)
    check([Int?].self, data)
    check(String.self, data)
}

private let foundationEncoder = {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]  // as JSONMessageCodec's
    return encoder
}()

private func check<T: Codable & Equatable>(_ type: T.Type, _ data: UnsafeRawBufferPointer) {
    let codec = JSONMessageCodec()
    let ours = try? codec.decode(T.self, from: data)
    let theirs = try? JSONDecoder().decode(T.self, from: Data(data))
    guard ours == theirs else {
        fatalError(
            "JSONMessageCodec decodes \(Array(data)) as \(T.self) \(String(describing: ours)); Foundation: \(String(describing: theirs))"
        )
    }
    guard let value = theirs else { return }
    var bytes: [UInt8] = []
    let written = (try? codec.encode(value, into: &bytes)).map { bytes }
    let expected = (try? foundationEncoder.encode(value)).map { Array($0) }
    guard written == expected else {
        fatalError(
            "JSONMessageCodec writes \(value) as \(String(describing: written)); Foundation: \(String(describing: expected))"
        )
    }
}

/// The targets by name.
let targets: [String: @Sendable (UnsafeRawBufferPointer) -> Void] = [
    "frame": fuzzFrame, "codec": fuzzCodec, "control": fuzzControl, "handshake": fuzzHandshake, "json": fuzzJSON,
    "http1": fuzzHTTP1,
]

/// Seeds beyond the golden fixtures: for the codecs, messages of every shape they decode; for the HTTP/1.1
/// reader, requests it takes and requests near them.
func builtInSeeds(_ target: String) -> [[UInt8]] {
    if target == "http1" {
        return [
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n"
                + #"{"increment":{}}"#,
            "POST /v1/actors/counter/c%2F1?timeout_ms=50 HTTP/1.1\r\ncontent-length:2\r\nAuthorization: Bearer t\r\n"
                + "Idempotency-Key: k-1\r\nPlex-Timeout-Ms: 9\r\nConnection: keep-alive\r\n\r\n{}POST /v1/actors/a/b HTTP/1.1\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nContent-Length: 0\r\nX-Empty:\r\nX-Tab:\ta\tb\t\r\n\r\n",
            "POST /v1/actors/counter/c1 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
        ].map { Array($0.utf8) }
    }
    if target == "json" {
        return [
            #"{"id":7,"name":"order-1","ratio":0.5,"small":-8,"kinds":[{"plain":{}},{"amount":{"_0":-3}},"#
                + #"{"named":{"_0":"x","tags":["a","b\"\\\/\n"]}}],"counts":{"a":1,"b":-2},"nested":[[true,false],[]]}"#,
            #"{"id":0,"name":"","kinds":[],"counts":{},"nested":[]}"#,
            #" {"a": 1, "b": -2, "1": 3, "01": 4} "#, "[1.5, -0, 1e300, 2.5e-308, 0.1, null]", #""text\t\u00e9""#,
            "[1, null, 3]", #"{"1":"a","2":"b"}"#,
        ].map { Array($0.utf8) }
    }
    guard target == "codec" else { return [] }
    let codec = BinaryMessageCodec()
    let samples = [
        Sample(
            id: 7, name: "order-1", ratio: 0.5, kinds: [.plain, .amount(-3), .named("x", tags: ["a", "b"])],
            counts: ["a": 1, "b": -2], blob: Data([0, 1, 255]), nested: [[true, false], []]),
        Sample(id: 0, name: "", ratio: nil, kinds: [], counts: [:], blob: Data(), nested: []),
    ]
    return samples.compactMap { try? codec.encode($0) } + [
        (try? codec.encode("text")) ?? [], (try? codec.encode([1, 2])) ?? [],
    ]
}
