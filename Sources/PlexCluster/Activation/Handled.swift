internal import PlexCore
internal import PlexJournal

/// What handling one message produced, and, for a durable actor, the journal write its reply waits for.
///
/// The actor's turn ends when the handler returns, so the actor takes its next message while this one
/// commits (in the same group commit, often); the reply is released only once the entry is durable.
struct Handled<Response: Sendable>: Sendable {
    var outcome: Result<Response, CallError>
    var write: PendingWrite?
    var actor: ActorID

    /// The reply, once it may leave: after the message's entry is durable.
    /// - Throws: The handler's ``CallError``, or `storageFailure` when the entry could not be journaled.
    func reply() async throws -> Response {
        if let write {
            do {
                try await write.wait()
            } catch {
                throw Self.notJournaled(actor, error)
            }
        }
        return try outcome.get()
    }

    /// Calls `body` with the reply once it may leave: at once for an ephemeral actor, else on the journal's
    /// thread when the entry is durable.
    func whenReleasable(_ body: @escaping @Sendable (Result<Response, CallError>) -> Void) {
        guard let write else { return body(outcome) }
        let (outcome, actor) = (self.outcome, self.actor)
        write.onComplete { result in
            switch result {
            case .success: body(outcome)
            case .failure(let error): body(.failure(Self.notJournaled(actor, error)))
            }
        }
    }

    /// The same handling with the reply transformed (encoded, say).
    func map<Other: Sendable>(_ transform: (Response) throws(CallError) -> Other) -> Handled<Other> {
        let outcome: Result<Other, CallError>
        switch self.outcome {
        case .success(let response):
            do throws(CallError) { outcome = .success(try transform(response)) } catch { outcome = .failure(error) }
        case .failure(let error): outcome = .failure(error)
        }
        return Handled<Other>(outcome: outcome, write: write, actor: actor)
    }

    static func notJournaled(_ actor: ActorID, _ error: any Error) -> CallError {
        CallError(.storageFailure, "\(actor): the call ran but could not be journaled, so it was not kept: \(error)")
    }
}
