internal import DequeModule
internal import NIOCore
internal import PlexCore
internal import PlexTransport
internal import PlexWire
internal import Synchronization

/// This node's calls and tells to one peer over the connection this node opened: correlation, the
/// in-flight window, deadlines, and failing fast when the connection is gone.
///
/// Calls and tells share one window of ``maximumInFlight`` slots. A call holds its slot until its reply; a
/// tell until the peer acknowledges it (it has queued the message for the actor, or refused it), so a flood
/// of tells waits for slots, then fails with `overloaded`, instead of queuing without limit in this node's
/// send buffers.
final class PeerLink: Sendable {
    /// Resumed exactly once: by the reply, the sweeper (timeout), or the loss of the connection — whichever
    /// removes the entry from `pending` first, under the lock. `nil` means "no window slot, wait and retry".
    /// Unsafe (unchecked) because this is the hot path and the invariant is local to this type.
    private typealias CallContinuation = UnsafeContinuation<Result<Wire.Frame, any Error>?, Never>

    private struct Pending {
        /// `nil` for a tell: nobody waits for its acknowledgement, which only frees the slot.
        var continuation: CallContinuation?
        var deadline: UInt64

        func resume(_ result: Result<Wire.Frame, any Error>) { continuation?.resume(returning: result) }
    }

    private struct WindowWaiter {
        var continuation: CheckedContinuation<Void, any Error>
        var deadline: UInt64
    }

    private struct State {
        var connection: (any Connection)?
        var pending: [UInt64: Pending] = [:]
        var waiters: Deque<WindowWaiter> = []
        /// Tells the peer acknowledged with an error reply (refused: the actor's mailbox was full, say).
        var refusedTells = 0
    }

    let peer: NodeID
    let maximumInFlight: Int
    private let state = Mutex(State())
    /// The last correlation id used on this link.
    private let correlations = Atomic<UInt64>(0)

    init(peer: NodeID, maximumInFlight: Int) {
        self.peer = peer
        self.maximumInFlight = maximumInFlight
    }

    var connection: (any Connection)? { state.withLock { $0.connection } }
    var isConnected: Bool { state.withLock { $0.connection != nil } }
    /// Calls and tells that hold a window slot.
    var inFlight: Int { state.withLock { $0.pending.count } }
    /// How many tells the peer refused (each was dropped there: delivery of a tell is at most once).
    var refusedTells: Int { state.withLock { $0.refusedTells } }

    /// Uses `connection` for calls unless the link already has one.
    /// - Returns: Whether it was attached; if not, the caller should close it.
    func attachIfDisconnected(_ connection: any Connection) -> Bool {
        state.withLock { state in
            guard state.connection == nil else { return false }
            state.connection = connection
            return true
        }
    }

    /// Sends a frame that expects a reply and waits for it, at most until `deadline`.
    ///
    /// A caller whose task is cancelled stops waiting for the answer at once, and the peer is sent a `cancel`
    /// frame for the call (as it is when the deadline passes first), so it skips the message if it has not run
    /// yet, or cancels its handler. (A caller still waiting for a window slot waits until its deadline.)
    ///
    /// - Throws: ``CallError`` `nodeUnavailable` (no connection, or it was lost), `timeout`, `overloaded`
    ///   (no window slot before the deadline), `cancelled`.
    /// - Parameter cancellable: `false` for work that must not stop half-way when its task is cancelled (a
    ///   handoff: its answer may already be committed at the other end); such a call waits for its answer or
    ///   its deadline, and throws ``NotSent`` when its frame was never sent.
    func call(
        kind: Wire.FrameKind, flags: Wire.FrameFlags, body: ByteBuffer, deadline: Deadline, cancellable: Bool = true
    ) async throws -> Wire.Frame {
        while true {
            let id = correlations.add(1, ordering: .relaxed).newValue
            let outcome: SendOutcome
            if cancellable {
                guard !Task.isCancelled else { throw Self.cancelled(peer) }
                outcome = await withTaskCancellationHandler {
                    await send(id, kind: kind, flags: flags, body: body, deadline: deadline, cancellable: true)
                } onCancel: {
                    abandon(id)
                }
            } else {
                outcome = await send(id, kind: kind, flags: flags, body: body, deadline: deadline, cancellable: false)
            }
            switch outcome {
            case .answered(let result): return try result.get()
            case .unavailable:
                let error = CallError(.nodeUnavailable, "no connection to \(peer)")
                throw cancellable ? error : NotSent(reason: error)
            case .full:
                do {
                    try await waitForWindow(deadline: deadline.uptimeNanoseconds)
                } catch let error as CallError where !cancellable {
                    throw NotSent(reason: error)
                }
            }
        }
    }

    /// What a call that is not cancellable throws when its frame was never sent (no connection, or no window
    /// slot before the deadline): the peer cannot have acted on it.
    struct NotSent: Error, CustomStringConvertible {
        let reason: CallError
        var description: String { "not sent: \(reason)" }
    }

    private enum SendOutcome {
        /// Sent; the answer, or why none came (timeout, connection lost, cancelled).
        case answered(Result<Wire.Frame, any Error>)
        /// Not sent: no connection.
        case unavailable
        /// Not sent: no window slot free.
        case full
    }

    /// Sends call `id` and waits for its answer.
    private func send(
        _ id: UInt64, kind: Wire.FrameKind, flags: Wire.FrameFlags, body: ByteBuffer, deadline: Deadline,
        cancellable: Bool
    ) async -> SendOutcome {
        enum Attempt { case unavailable, full, sent }
        let result: Result<Wire.Frame, any Error>? = await withUnsafeContinuation { (outer: CallContinuation) in
            let attempt = state.withLock { state -> Attempt in
                guard let connection = state.connection else { return .unavailable }
                guard state.pending.count < maximumInFlight else { return .full }
                state.pending[id] = Pending(continuation: outer, deadline: deadline.uptimeNanoseconds)
                connection.send(Wire.Frame(kind: kind, flags: flags, correlationID: id, body: body))
                return .sent
            }
            switch attempt {
            case .unavailable: outer.resume(returning: .failure(Unavailable()))
            case .full: outer.resume(returning: nil)
            case .sent:
                // Cancelled before the entry existed: the cancellation handler found nothing to abandon.
                if cancellable && Task.isCancelled { abandon(id) }
            }
        }
        switch result {
        case nil: return .full
        case .failure(let error) where error is Unavailable: return .unavailable
        case let result?: return .answered(result)
        }
    }

    private struct Unavailable: Error {}

    private static func cancelled(_ peer: NodeID) -> CallError {
        CallError(.cancelled, "the caller's task was cancelled; \(peer) was told to skip or cancel the call")
    }

    /// Stops waiting for call `id` (its caller was cancelled), frees its slot and tells the peer.
    private func abandon(_ id: UInt64) {
        let (pending, connection, waiter) = state.withLock { state -> (Pending?, (any Connection)?, WindowWaiter?) in
            guard let pending = state.pending[id], pending.continuation != nil else { return (nil, nil, nil) }
            state.pending.removeValue(forKey: id)
            let waiter = state.waiters.isEmpty ? nil : state.waiters.removeFirst()
            return (pending, state.connection, waiter)
        }
        guard let pending else { return }
        connection?.send(Wire.Frame(kind: .cancel, correlationID: id, body: ByteBuffer()))
        pending.resume(.failure(Self.cancelled(peer)))
        waiter?.continuation.resume()
    }

    private func waitForWindow(deadline: UInt64) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let waiting = state.withLock { state -> Bool in
                guard state.pending.count >= maximumInFlight, state.connection != nil else { return false }
                state.waiters.append(WindowWaiter(continuation: continuation, deadline: deadline))
                return true
            }
            if !waiting { continuation.resume() }
        }
    }

    /// Sends a tell once a window slot is free, and returns without waiting for the actor.
    ///
    /// The frame carries a correlation id; the peer answers it with an empty reply once the message is in the
    /// actor's mailbox, or with an error reply if it refused it, and either frees the slot. An
    /// acknowledgement that never comes (its frame dropped by a network that keeps the connection) frees the
    /// slot at `holdUntil`, so a lost frame cannot shrink the window for good.
    ///
    /// - Parameters:
    ///   - deadline: How long to wait for a slot.
    ///   - holdUntil: When the slot is freed if no acknowledgement came; after `deadline`, so
    ///     a tell waiting for a slot is not let through by a guard meant for lost frames.
    /// - Throws: ``CallError`` `nodeUnavailable` (no connection), `overloaded` (no slot before `deadline`).
    func tell(flags: Wire.FrameFlags, body: ByteBuffer, deadline: Deadline, holdUntil: Deadline) async throws {
        while true {
            enum Attempt { case unavailable, full, sent }
            let attempt = state.withLock { state -> Attempt in
                guard let connection = state.connection else { return .unavailable }
                guard state.pending.count < maximumInFlight else { return .full }
                let id = correlations.add(1, ordering: .relaxed).newValue
                state.pending[id] = Pending(continuation: nil, deadline: holdUntil.uptimeNanoseconds)
                connection.send(Wire.Frame(kind: .tell, flags: flags, correlationID: id, body: body))
                return .sent
            }
            switch attempt {
            case .unavailable: throw CallError(.nodeUnavailable, "no connection to \(peer)")
            case .sent: return
            case .full: try await waitForWindow(deadline: deadline.uptimeNanoseconds)
            }
        }
    }

    /// Sends a frame outside the window (gossip), expecting no reply.
    /// - Throws: ``CallError`` `nodeUnavailable` when there is no connection.
    func send(_ frame: Wire.Frame) throws {
        guard let connection = state.withLock({ $0.connection }) else {
            throw CallError(.nodeUnavailable, "no connection to \(peer)")
        }
        connection.send(frame)
    }

    /// A reply (or error reply) arrived: for a call, or the acknowledgement of a tell.
    func complete(_ frame: Wire.Frame) {
        let (pending, waiter) = state.withLock { state -> (Pending?, WindowWaiter?) in
            let pending = state.pending.removeValue(forKey: frame.correlationID)
            if let pending, pending.continuation == nil, frame.kind == .errorReply { state.refusedTells += 1 }
            let waiter = pending != nil && !state.waiters.isEmpty ? state.waiters.removeFirst() : nil
            return (pending, waiter)
        }
        pending?.resume(.success(frame))
        waiter?.continuation.resume()
    }

    /// Fails calls and window waits whose deadline passed (the peer is sent a `cancel` frame for each call),
    /// and frees the slots of tells whose acknowledgement is overdue.
    func expire(now: UInt64) {
        let (expired, connection, waiters) = state.withLock {
            state -> ([(UInt64, Pending)], (any Connection)?, [WindowWaiter]) in
            var expired: [(UInt64, Pending)] = []
            for (id, pending) in state.pending where pending.deadline <= now {
                expired.append((id, pending))
                state.pending.removeValue(forKey: id)
            }
            var late: [WindowWaiter] = []
            state.waiters.removeAll { waiter in
                if waiter.deadline <= now {
                    late.append(waiter)
                    return true
                }
                return false
            }
            // Slots freed by expiry go to waiters.
            var woken: [WindowWaiter] = late
            var free = maximumInFlight - state.pending.count
            while free > 0, let next = state.waiters.popFirst() {
                woken.append(next)
                free -= 1
            }
            return (expired, state.connection, woken)
        }
        for (id, pending) in expired where pending.continuation != nil {
            // The caller gives up: the peer skips the call, or cancels its handler.
            connection?.send(Wire.Frame(kind: .cancel, correlationID: id, body: ByteBuffer()))
            pending.resume(.failure(CallError(.timeout, "no reply from \(peer) before the deadline")))
        }
        for waiter in waiters {
            if waiter.deadline <= now {
                waiter.continuation.resume(
                    throwing: CallError(
                        .overloaded, "\(maximumInFlight) calls in flight to \(peer); no slot before the deadline"))
            } else {
                waiter.continuation.resume()
            }
        }
    }

    /// The connection closed: every call in flight fails with `nodeUnavailable`.
    func detach(_ connection: any Connection) {
        let (pending, waiters) = state.withLock { state -> ([Pending], [WindowWaiter]) in
            guard let current = state.connection, current === connection else { return ([], []) }
            state.connection = nil
            defer {
                state.pending = [:]
                state.waiters = []
            }
            return (Array(state.pending.values), Array(state.waiters))
        }
        let error = CallError(.nodeUnavailable, "connection to \(peer) lost; the call may or may not have run")
        for entry in pending { entry.resume(.failure(error)) }
        for waiter in waiters { waiter.continuation.resume(throwing: error) }
    }
}
