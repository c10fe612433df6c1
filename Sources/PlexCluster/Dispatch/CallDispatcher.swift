internal import Logging
internal import NIOCore
internal import PlexCore
internal import PlexJournal
internal import PlexTransport
internal import PlexWire
internal import Synchronization

/// Where a call goes.
enum Route {
    case local
    case remote(PeerLink)
}

/// A node's call dispatch: routes this node's calls and tells to their owners, takes the frames that arrive
/// (calls and tells, and the control-plane frames it hands to the other roles), forwards calls for actors
/// another member owns, and runs local messages in their actor's turn (``Turn.swift``).
final class CallDispatcher: Sendable {
    let runtime: NodeRuntime
    let membership: Membership
    let directory: ActivationDirectory
    let handoff: HandoffCoordinator
    let admin: AdminCommands
    /// The codec of calls between nodes (``CallConfiguration/codec``).
    let codec: any MessageCodec
    /// How many messages may wait for one actor (``ActivationConfiguration/maximumMailboxDepth``).
    let mailboxLimit: Int
    /// Calls from peers and clients that run here or are forwarded, for their `cancel` frames.
    let inbound = InboundCalls()
    /// The timeouts of local JSON calls that wait with a deadline.
    let deadlines = DeadlineSweep()
    private let callOrigin: UInt64
    private let callSequence = Atomic<UInt64>(0)

    init(
        runtime: NodeRuntime, membership: Membership, directory: ActivationDirectory, handoff: HandoffCoordinator,
        admin: AdminCommands
    ) {
        self.runtime = runtime
        self.membership = membership
        self.directory = directory
        self.handoff = handoff
        self.admin = admin
        self.codec = runtime.configuration.calls.codec
        self.mailboxLimit = runtime.configuration.activation.maximumMailboxDepth
        self.callOrigin = StableHash.hash(runtime.nodeID.rawValue, String(runtime.incarnation))
    }

    var nodeID: NodeID { runtime.nodeID }
    var logger: Logger { runtime.logger }

    /// A call id no other call of this node's incarnation has.
    func nextCallID() -> CallID {
        CallID(origin: callOrigin, sequence: callSequence.add(1, ordering: .relaxed).newValue)
    }

    // MARK: Routing

    /// Where calls for `id` go: the named registration if any, else placement; fails fast when the owner
    /// is unreachable or not connected.
    /// - Throws: ``CallError`` `nodeUnavailable`.
    func route(_ id: ActorID, placement: PlacementStrategy) throws(CallError) -> Route {
        let table = membership.routing
        guard table.joined else {
            // Without its cluster's ring a node cannot know who owns anything; guessing could fork an actor.
            throw CallError(
                .nodeUnavailable, "\(nodeID) has not joined its cluster yet (waiting for a seed); retry later")
        }
        guard let (owner, entry) = table.owner(of: id, placement: placement) else {
            throw CallError(.nodeUnavailable, "no member owns \(id)")
        }
        if owner == nodeID { return .local }
        guard let entry, entry.reachable else {
            throw CallError(.nodeUnavailable, "\(owner), the owner of \(id), is unreachable")
        }
        guard let link = entry.link, link.isConnected else {
            throw CallError(.nodeUnavailable, "\(owner), the owner of \(id), is not connected")
        }
        return .remote(link)
    }

    // MARK: This node's calls

    /// Calls `id` wherever it lives and returns its reply.
    /// - Throws: ``CallError``.
    func ask<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request, options: CallOptions)
        async throws -> A.Response
    {
        guard runtime.isRunning else { throw CallError(.shuttingDown, "\(nodeID) is stopped") }
        let now = NodeRuntime.now()
        let deadline = runtime.deadline(after: options.timeout, now: now)
        switch try route(id, placement: A.placement) {
        case .local:
            return try await runHere(
                type, id, request, callID: nextCallID(),
                idempotencyKey: options.idempotencyKey, deadline: deadline, admitting: mailboxLimit)
        case .remote(let link):
            return try await hop(to: id, via: link) { trace in
                let body = try encode(
                    request, to: id, idempotencyKey: options.idempotencyKey, deadline: deadline, now: now,
                    trace: trace)
                let reply = try await link.call(
                    kind: .call, flags: Wire.FrameFlags(carrying: trace), body: body, deadline: deadline)
                return try Wire.response(A.Response.self, from: reply, codec: codec)
            }
        }
    }

    /// Sends `request` to `id` without waiting for the actor: returns once it is queued (here) or the owner
    /// acknowledged it (there).
    /// - Throws: ``CallError`` `overloaded` when the mailbox or the window to the owner is full, and the
    ///   routing errors.
    func tell<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request) async throws {
        guard runtime.isRunning else { throw CallError(.shuttingDown, "\(nodeID) is stopped") }
        let now = NodeRuntime.now()
        let deadline = runtime.deadline(after: nil, now: now)
        switch try route(id, placement: A.placement) {
        case .local:
            let logger = self.logger
            let admission = try enqueueHere(
                try directory.entry(for: type), id, request, callID: nextCallID(), idempotencyKey: nil,
                deadline: .never, admitting: mailboxLimit
            ) { result in
                if case .failure(let error) = result {
                    logger.debug("tell failed", metadata: ["actor.id": "\(id)", "error": "\(error)"])
                }
            }
            if case .full(let first) = admission { throw mailboxFull(id, first: first) }
        case .remote(let link):
            // A tell carries no deadline to the owner; here it waits for a window slot until `deadline`.
            let grace = runtime.configuration.calls.defaultTimeout
            try await hop(to: id, via: link) { trace in
                let body = try encode(request, to: id, idempotencyKey: nil, deadline: .never, now: now, trace: trace)
                try await link.tell(
                    flags: Wire.FrameFlags(carrying: trace), body: body, deadline: deadline,
                    holdUntil: deadline.adding(grace))
            }
        }
    }

    /// Sends a call to `id` over `link` with `send`, in a client span when the node traces; `send` gets the
    /// trace fields its frame carries (none when the node does not trace).
    func hop<T>(
        to id: ActorID, via link: PeerLink, isolation: isolated (any Actor)? = #isolation,
        _ send: ([String: String]) async throws -> T
    ) async rethrows -> T {
        guard let tracing = runtime.tracing else { return try await send([:]) }
        return try await tracing.hop(to: id, peer: link.peer, send)
    }

    private func encode<Request: Encodable>(
        _ request: Request, to id: ActorID, idempotencyKey: String?, deadline: Deadline, now: UInt64,
        trace: [String: String] = [:]
    ) throws(CallError) -> ByteBuffer {
        try Self.requireWireStrings(id, idempotencyKey)
        let body: ByteBuffer
        do {
            body = try Wire.callBody(
                to: id, request, codec: codec, idempotencyKey: idempotencyKey, deadline: deadline, now: now,
                callID: nextCallID(), trace: trace)
        } catch {
            throw CallError.wrapping(error)
        }
        try runtime.requireFits(body, code: .invalidRequest, "the request to \(id)")
        return body
    }

    // MARK: Limits

    /// Refuses an actor type, key or idempotency key longer than the wire's `u16` length: cut short, it would
    /// name another actor (activated where the whole id is not owned) or another key.
    static func requireWireStrings(_ id: ActorID, _ idempotencyKey: String?) throws(CallError) {
        let limit = Int(UInt16.max)
        guard id.typeName.utf8.count <= limit, id.key.utf8.count <= limit, (idempotencyKey?.utf8.count ?? 0) <= limit
        else {
            throw CallError(
                .invalidRequest, "an actor type, key or idempotency key is over \(limit) bytes (\(id.typeName))")
        }
    }

    /// The error for a message refused because `id`'s mailbox is full; logs a warning on the first refusal
    /// since the mailbox was last empty.
    func mailboxFull(_ id: ActorID, first: Bool) -> CallError {
        directory.entry(named: id.typeName)?.metrics.refused()
        if first {
            logger.warning(
                "mailbox full; refusing messages with overloaded until it drains",
                metadata: ["actor.id": "\(id)", "mailbox_limit": "\(mailboxLimit)"])
        }
        return CallError(
            .overloaded,
            "\(id) has \(mailboxLimit) messages waiting, its mailbox limit (mailbox_limit); this one did not run")
    }
}

/// The router every `ActorRef` of the node and every actor's context calls through.
extension CallDispatcher: ActorCallRouter {}

extension CallError {
    /// `error` as a ``CallError``: itself if it is one, else one with `code` (by default `codecFailure`,
    /// what a codec throws).
    static func wrapping(_ error: any Error, as code: Code = .codecFailure) -> CallError {
        error as? CallError ?? CallError(code, "\(error)")
    }
}
