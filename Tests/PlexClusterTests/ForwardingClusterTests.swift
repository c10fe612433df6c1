import PlexCore
import PlexTestKit
import PlexTransport
import PlexWire
import Synchronization
import Testing

@testable import PlexCluster

/// A client connection that records what the node answers on it.
final class RecordingConnection: Connection {
    let peer = PeerIdentity(role: .client, nodeID: NodeID(unchecked: "client"), incarnation: 0, listenAddress: "")
    let connectionID: UInt64 = 1
    let maximumFrameSize = Wire.defaultMaximumFrameSize
    let taskExecutor: (any TaskExecutor)? = nil
    let isOutbound = false
    private let sent = Mutex<[Wire.Frame]>([])

    var frames: [Wire.Frame] { sent.withLock { $0 } }
    func send(_ frame: Wire.Frame) { sent.withLock { $0.append(frame) } }
    func checkedSend(_ frame: Wire.Frame) throws(TransportError) { send(frame) }
    func close() {}
}

@Suite("Forwarding", .timeLimit(.minutes(1)))
struct ForwardingClusterTests {
    @Test("a call for an actor another member owns is forwarded once; one that was forwarded already is refused")
    func forwardedOnce() async throws {
        let census = HandlerCensus()
        try await withTestCluster(
            nodes: 2, transport: .inMemory, register: { $0.register(Busy.self) { Busy(census: census) } }
        ) {
            cluster in
            let (entry, owner) = (cluster.node(0), cluster.node(1))
            let key = ownedKey(of: Busy.self, ownedBy: owner.nodeID, on: entry)
            let actor = ActorID(typeName: Busy.typeName, key: key)
            func callFrame(_ correlation: UInt64, flags: Wire.FrameFlags) throws -> Wire.Frame {
                let body = try Wire.callBody(
                    to: actor, 1, codec: BinaryMessageCodec(), idempotencyKey: nil, deadline: .after(.seconds(5)),
                    now: Deadline.now(), callID: CallID(origin: 7, sequence: correlation))
                return Wire.Frame(kind: .call, flags: flags, correlationID: correlation, body: body)
            }
            let client = RecordingConnection()
            // Not forwarded yet: the entry node forwards it to the owner, which runs it.
            entry.dispatcher.received(try callFrame(1, flags: []), on: client)
            try await eventually("the forwarded call is answered") { client.frames.count == 1 }
            #expect(client.frames[0].kind == .reply)
            #expect(census.started == 1)
            // Marked forwarded (a node with another view sent it here): refused, never sent on.
            entry.dispatcher.received(try callFrame(2, flags: .forwarded), on: client)
            try await eventually("the second call is answered") { client.frames.count == 2 }
            #expect(client.frames[1].kind == .errorReply)
            let error = Wire.callError(from: client.frames[1])
            #expect(error.code == .nodeUnavailable)
            #expect(error.message.contains("was forwarded to"))
            #expect(census.started == 1)
        }
    }
}
