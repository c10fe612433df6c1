internal import Synchronization

/// An append on its way to disk: completes once, when the group commit that carries it is durable or failed.
///
/// Lets an actor go on with its next message while its last one commits, and release that message's reply
/// only when the write is durable (an output gate).
public final class PendingWrite: Sendable {
    private enum State {
        case pending([@Sendable (Result<Void, JournalError>) -> Void])
        case done(Result<Void, JournalError>)
    }

    private let state = Mutex(State.pending([]))

    init() {}

    /// A write that already completed (for appends that had nothing to write).
    static func completed(_ result: Result<Void, JournalError>) -> PendingWrite {
        let write = PendingWrite()
        write.complete(result)
        return write
    }

    /// A write that completes when all of `writes` have: successfully if they all did.
    static func all(_ writes: [PendingWrite]) -> PendingWrite {
        let combined = PendingWrite()
        let remaining = Mutex((count: writes.count, failure: JournalError?.none))
        for write in writes {
            write.onComplete { result in
                let done = remaining.withLock { state -> Result<Void, JournalError>? in
                    if case .failure(let error) = result, state.failure == nil { state.failure = error }
                    state.count -= 1
                    guard state.count == 0 else { return nil }
                    return state.failure.map { .failure($0) } ?? .success(())
                }
                if let done { combined.complete(done) }
            }
        }
        return combined
    }

    /// The outcome, if the write completed.
    public var result: Result<Void, JournalError>? {
        state.withLock { state in
            if case .done(let result) = state { return result }
            return nil
        }
    }

    /// Calls `callback` with the outcome: right away if it is known, else on the journal's thread when it is.
    /// Callbacks run in the order they were added; keep them short and non-blocking.
    public func onComplete(_ callback: @escaping @Sendable (Result<Void, JournalError>) -> Void) {
        let known = state.withLock { state -> Result<Void, JournalError>? in
            switch state {
            case .pending(var callbacks):
                callbacks.append(callback)
                state = .pending(callbacks)
                return nil
            case .done(let result):
                return result
            }
        }
        if let known { callback(known) }
    }

    /// Waits until the write is durable.
    /// - Throws: ``JournalError`` when it failed; nothing of it was kept.
    public func wait() async throws {
        let result = await withCheckedContinuation {
            (continuation: CheckedContinuation<Result<Void, JournalError>, Never>) in
            onComplete { continuation.resume(returning: $0) }
        }
        try result.get()
    }

    func complete(_ result: Result<Void, JournalError>) {
        let callbacks = state.withLock { state -> [@Sendable (Result<Void, JournalError>) -> Void] in
            guard case .pending(let callbacks) = state else { return [] }
            state = .done(result)
            return callbacks
        }
        for callback in callbacks { callback(result) }
    }
}
