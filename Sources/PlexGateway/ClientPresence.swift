internal import NIOCore
internal import Synchronization

/// Whether a request's client is still there, for a route that waits long (a workflow result poll, which should
/// stop asking the owner once nobody waits for its answer): gone once it closed its side of the connection, or
/// the connection (for an HTTP/2 request, its stream) ended. A connection's handler says when
/// (``PlainHTTP1Handler``, ``HTTP2ConnectionManager``); ``GatewayRequestContext/clientPresence()`` finds it.
final class ClientPresence: Sendable {
    private struct State {
        var gone: Bool
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state: Mutex<State>

    init(gone: Bool = false) {
        state = Mutex(State(gone: gone))
    }

    /// Gone once `channel` closes.
    convenience init(closing channel: any Channel) {
        self.init()
        channel.closeFuture.whenComplete { _ in self.markGone() }
    }

    var isGone: Bool { state.withLock { $0.gone } }

    /// The client is gone: every wait ends.
    func markGone() {
        let waiters = state.withLock { state in
            state.gone = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once the client is gone, or at once when the task is cancelled.
    func untilGone() async {
        let id = state.withLock { state in
            state.nextWaiter += 1
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let now = state.withLock { state in
                    guard !state.gone, !Task.isCancelled else { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}

/// What a connection's handler keeps of its client's ``ClientPresence``: whether the client left, and the
/// presence, made when a request first asks for it (most connections never have one).
struct ClientPresenceSlot {
    private var left = false
    private var presence: ClientPresence?

    mutating func current() -> ClientPresence {
        if let presence { return presence }
        let made = ClientPresence(gone: left)
        presence = made
        return made
    }

    /// The client closed its side of the connection, or the connection ended.
    mutating func clientLeft() {
        left = true
        presence?.markGone()
    }
}
