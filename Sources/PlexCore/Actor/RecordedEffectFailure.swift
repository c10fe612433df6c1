/// The error a durable actor's `context.run` throws when its effect threw an error that is neither an
/// ``ActorFailure`` nor a ``CallError``.
///
/// A durable actor's effects are journaled, and replay throws what the journal recorded, so the handler sees
/// the same error on the first run and on every replay: ``ActorFailure`` and ``CallError`` as themselves,
/// any other error as this, carrying its type's name and its description. A handler that branches on an
/// effect's error matches an ``ActorFailure`` code, a ``CallError`` code, or ``typeName`` here.
public struct RecordedEffectFailure: Error, Hashable, Sendable, CustomStringConvertible {
    /// The name of the error's type, as `String(describing:)` writes it (for example `"PaymentError"`).
    public var typeName: String
    /// The error's description.
    public var message: String

    /// Creates a recorded failure.
    public init(typeName: String, message: String) {
        self.typeName = typeName
        self.message = message
    }

    public var description: String { "\(typeName): \(message)" }
}
