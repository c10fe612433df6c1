internal import PlexCore
internal import PlexJournal

/// Holds a durable actor's reply until the journal write of its message is durable.
///
/// The actor's turn ends when the handler returns, so it takes its next message while this one commits (in
/// the same group commit, often); the reply, or the error reply, leaves only once the entry is durable.
/// The other half of the gate holds effects: the next message's `context.run`, `context.schedule`, and
/// calls or `tell`s through `context.actor` wait for the same write (its ``EffectLog`` is made with it), so
/// nothing outside the actor acts on a state that a crash could still lose.
/// Deliberately not generic: the call path stays free of generic metadata lookups.
enum OutputGate {
    /// Returns once `write` is durable (at once if there is none).
    /// - Throws: ``CallError`` `storageFailure` when the entry could not be journaled.
    static func wait(for write: PendingWrite?, actor: ActorID) async throws(CallError) {
        guard let write else { return }
        do {
            try await write.wait()
        } catch {
            throw notJournaled(actor, error)
        }
    }

    /// Calls `body` once `write` is durable (at once if there is none, else on the journal's thread) with
    /// `nil`, or with the `storageFailure` if it failed.
    static func whenDurable(
        _ write: PendingWrite?, actor: ActorID, _ body: @escaping @Sendable (CallError?) -> Void
    ) {
        guard let write else { return body(nil) }
        write.onComplete { result in
            switch result {
            case .success: body(nil)
            case .failure(let error): body(notJournaled(actor, error))
            }
        }
    }

    static func notJournaled(_ actor: ActorID, _ error: any Error) -> CallError {
        CallError(.storageFailure, "\(actor): the call ran but could not be journaled, so it was not kept: \(error)")
    }
}
