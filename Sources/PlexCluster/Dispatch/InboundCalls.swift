internal import PlexTransport
internal import Synchronization

/// One call a peer or client made to this node, for as long as it runs here or is forwarded: what a
/// `cancel` frame for it (or the loss of its connection) must stop.
final class InboundCall: Sendable {
    private enum State {
        /// Queued for its actor's turn (or being routed).
        case waiting
        /// Its handler runs as the job in hand of this mailbox.
        case running(Mailbox)
        /// Forwarded to its owner by this task.
        case forwarding(Task<Void, Never>)
        case cancelled
    }

    private let state = Mutex(State.waiting)

    /// The call's turn came: it runs unless it was cancelled meanwhile.
    /// - Returns: `false` when it was cancelled: skip it.
    func begin(in mailbox: Mailbox) -> Bool {
        state.withLock { state in
            guard case .waiting = state else { return false }
            state = .running(mailbox)
            return true
        }
    }

    /// The call is forwarded by `task`; cancelling the call cancels it (which sends `cancel` on to the owner).
    func forwarded(by task: Task<Void, Never>) {
        let cancelled = state.withLock { state -> Bool in
            guard case .waiting = state else { return true }
            state = .forwarding(task)
            return false
        }
        if cancelled { task.cancel() }
    }

    /// The handler returned: the turn moves on, and a `cancel` must not reach the next job. A call that runs
    /// again (its activation went away while it waited) begins again.
    func end() {
        state.withLock { state in
            if case .running = state { state = .waiting }
        }
    }

    /// Cancels the call: a waiting call is skipped when its turn comes, a running handler is cancelled
    /// cooperatively, a forwarded call is cancelled at its owner.
    func cancel() {
        state.withLock { state in
            switch state {
            case .waiting: state = .cancelled
            // Under the lock: the handler cannot finish (and the mailbox move on to another job) meanwhile.
            case .running(let mailbox):
                mailbox.cancelJobInHand()
                state = .cancelled
            case .forwarding(let task):
                task.cancel()
                state = .cancelled
            case .cancelled: break
            }
        }
    }
}

/// The calls peers and clients made to this node that run here or are forwarded, by connection and
/// correlation id, so that a `cancel` frame reaches its call. Striped over several locks: every inbound call
/// is registered and removed, from every event loop.
final class InboundCalls: Sendable {
    private struct Key: Hashable {
        let connection: ObjectIdentifier
        let correlation: UInt64
    }

    private final class Stripe: Sendable {
        let calls = Mutex<[Key: InboundCall]>([:])
    }

    private let stripes: [Stripe] = (0..<8).map { _ in Stripe() }

    private func stripe(_ correlation: UInt64) -> Stripe { stripes[Int(correlation & 7)] }

    /// Registers call `correlation` from `connection`.
    func register(_ correlation: UInt64, on connection: any Connection) -> InboundCall {
        let call = InboundCall()
        stripe(correlation).calls.withLock {
            $0[Key(connection: ObjectIdentifier(connection), correlation: correlation)] = call
        }
        return call
    }

    /// Forgets call `correlation` from `connection` (it was answered): no `cancel` can reach it after this.
    func remove(_ correlation: UInt64, on connection: any Connection) {
        _ = stripe(correlation).calls.withLock {
            $0.removeValue(forKey: Key(connection: ObjectIdentifier(connection), correlation: correlation))
        }
    }

    /// A `cancel` frame arrived for call `correlation` from `connection`.
    func cancel(_ correlation: UInt64, on connection: any Connection) {
        stripe(correlation).calls.withLock {
            $0.removeValue(forKey: Key(connection: ObjectIdentifier(connection), correlation: correlation))
        }?.cancel()
    }

    /// `connection` closed: nobody waits for the answers of its calls any more.
    func cancelAll(on connection: any Connection) {
        let id = ObjectIdentifier(connection)
        var cancelled: [InboundCall] = []
        for stripe in stripes {
            cancelled += stripe.calls.withLock { calls -> [InboundCall] in
                let keys = calls.keys.filter { $0.connection == id }
                return keys.compactMap { calls.removeValue(forKey: $0) }
            }
        }
        for call in cancelled { call.cancel() }
    }

    /// How many calls are registered (for tests).
    var count: Int { stripes.reduce(0) { $0 + $1.calls.withLock { $0.count } } }
}
