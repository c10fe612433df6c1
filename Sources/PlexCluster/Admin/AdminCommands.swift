internal import Logging
internal import PlexCore
internal import PlexTransport
internal import PlexWire
internal import Synchronization

/// What admin commands need of the node they run on; the node implements it.
protocol NodeLifecycle: AnyObject, Sendable {
    /// Announces the leave and hands off durable actors, but keeps running.
    func drain() async -> (moved: Int, failed: Int)
    /// Stops the node (deactivating its activations).
    func shutdown() async
}

/// A node's admin role: answers `plex cluster status`, `plex node stop` and `plex cluster remove` (and other
/// nodes' removal votes), arriving as `adminRequest` frames.
final class AdminCommands: Sendable {
    let runtime: NodeRuntime
    let membership: Membership
    let directory: ActivationDirectory
    private let lifecycleBox = Mutex<WeakLifecycle>(WeakLifecycle())

    private struct WeakLifecycle: @unchecked Sendable {
        // Guarded by the mutex that holds this value.
        weak var node: (any NodeLifecycle)?
    }

    init(runtime: NodeRuntime, membership: Membership, directory: ActivationDirectory) {
        self.runtime = runtime
        self.membership = membership
        self.directory = directory
    }

    func bind(_ node: any NodeLifecycle) { lifecycleBox.withLock { $0.node = node } }

    private var node: (any NodeLifecycle)? { lifecycleBox.withLock { $0.node } }
    var nodeID: NodeID { runtime.nodeID }
    var logger: Logger { runtime.logger }

    /// An `adminRequest` frame arrived; the answer goes back on the same connection.
    func received(_ frame: Wire.Frame, on connection: any Connection) {
        let correlation = frame.correlationID
        @Sendable func answer(_ reply: AdminReply) {
            connection.send(Wire.Frame(kind: .adminReply, correlationID: correlation, body: reply.body))
        }
        guard let request = runtime.decodeOrClose(frame, on: connection, AdminRequest.init(frame:)) else { return }
        if let refusal = Self.refusal(of: request, from: connection.peer) {
            logger.warning(
                "refusing an admin request", metadata: ["peer": "\(connection.peer)", "error": "\(refusal)"])
            connection.send(Wire.errorFrame(refusal, correlationID: correlation))
            return
        }
        switch request {
        case .status:
            answer(status())
        case .leave:
            logger.info("leaving at an operator's request", metadata: ["peer": "\(connection.peer)"])
            runtime.tasks.start {
                guard let node = self.node else { return }
                let (moved, failed) = await node.drain()
                var reply = self.status()
                reply.moved = moved
                reply.notMoved = failed
                reply.outcome =
                    failed == 0
                    ? "\(self.nodeID) left the cluster; \(moved) durable actors were handed to their new owners"
                    : "\(self.nodeID) left the cluster; \(moved) durable actors were handed off, \(failed) were not "
                        + "(within the drain timeout) and stay in its journal until it rejoins"
                answer(reply)
                await node.shutdown()
            }
        case .remove(let member, let force):
            runtime.tasks.start {
                var reply = self.status()
                reply.outcome = await self.remove(member, force: force)
                answer(reply)
            }
        }
    }

    /// Why `peer` may not make `request`, or `nil`: a caller (a client whose certificate gives it the `caller`
    /// role, or that proved the caller secret) may read the status, and may not stop or remove nodes.
    static func refusal(of request: AdminRequest, from peer: PeerIdentity) -> CallError? {
        guard peer.isCallerOnly else { return nil }
        switch request {
        case .status: return nil
        case .leave, .remove:
            if case .client(let name, _)? = peer.certified {
                return CallError(
                    .permissionDenied,
                    "client \(name) has the caller role: stopping or removing a node needs a client certificate "
                        + "with the admin role (plex certs client NAME --role admin)")
            }
            return CallError(
                .permissionDenied,
                "this client proved the caller secret, which gives the caller role: stopping or removing a node "
                    + "needs the cluster secret")
        }
    }

    /// The cluster as this node sees it (`plex cluster status`).
    func status() -> AdminReply {
        let count = directory.count
        let (gossip, records) = membership.update { state in
            state.setSelfActivations(count)
            return (state.gossip(), state.members)
        }
        let members = gossip.members.sorted { $0.nodeID < $1.nodeID }.map { member in
            let record = records[NodeID(unchecked: member.nodeID)]
            let reachability =
                member.status != MemberStatus.up.rawValue
                ? (record?.status.description ?? "left")
                : (record?.reachable ?? false ? "up" : "unreachable")
            return AdminReply.MemberView(member: member, reachability: reachability)
        }
        return AdminReply(
            nodeID: nodeID.rawValue, clusterName: runtime.configuration.clusterName,
            clusterID: membership.clusterID ?? "", membership: membership.joinDescription, members: members,
            registry: gossip.registry, warnings: [runtime.configuration.tls?.expiryWarning()].compactMap { $0 })
    }
}
