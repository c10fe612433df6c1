/// The side effects one message performed, in order: recorded while it runs, served back when a durable
/// actor replays it, so no effect runs twice for a message that was durably processed.
///
/// Guarded by the activation's turn: only the handler of the message it belongs to touches it (``earlier``
/// is immutable, and may be read from anywhere).
public final class EffectLog: @unchecked Sendable {
    /// One recorded effect: the name the handler gave it and its encoded result, or what it threw.
    ///
    /// The journal stores a message's effects as `[Effect]` in the binary codec, whose keyed containers let
    /// fields be added: ``failure`` is absent from entries written before failures were journaled (and from
    /// every effect that returned), so those entries read as before.
    public struct Effect: Codable, Sendable, Hashable {
        /// The name the handler gave the effect.
        public var name: String
        /// The encoded result; empty when the effect threw.
        public var value: [UInt8]
        /// What the effect threw, if it did.
        public var failure: Failure?
    }

    /// An error a recorded effect threw, as the journal keeps it: enough to throw an equal error on replay.
    public struct Failure: Codable, Sendable, Hashable {
        /// The thrown error's type name (`ActorFailure`, `CallError`, or the handler's own type).
        public var typeName: String
        /// The error's message (``ActorFailure/message``, ``CallError/message``, or its description).
        public var message: String
        /// ``ActorFailure/code``, or a ``CallError``'s ``CallError/remoteCode``.
        public var code: String?
        /// A ``CallError``'s code number, when the error was one.
        public var callErrorCode: UInt16?

        /// The journaled form of `error`.
        public init(_ error: any Error) {
            switch error {
            case let failure as ActorFailure:
                self.typeName = "ActorFailure"
                self.message = failure.message
                self.code = failure.code
            case let error as CallError:
                self.typeName = "CallError"
                self.message = error.message
                self.code = error.remoteCode
                self.callErrorCode = error.code.rawValue
            case let recorded as RecordedEffectFailure:
                self.typeName = recorded.typeName
                self.message = recorded.message
            default:
                self.typeName = String(describing: type(of: error))
                self.message = String(describing: error)
            }
        }

        /// The error a handler sees, on the first run and on replay alike: an ``ActorFailure`` or a
        /// ``CallError`` as itself, any other error as a ``RecordedEffectFailure``.
        public var error: any Error {
            if let callErrorCode {
                return CallError(CallError.Code(rawValue: callErrorCode), message, remoteCode: code)
            }
            if typeName == "ActorFailure", let code { return ActorFailure(code: code, message: message) }
            return RecordedEffectFailure(typeName: typeName, message: message)
        }
    }

    private enum Mode {
        case recording
        case replaying
    }

    /// A reminder the message set (`due` in milliseconds since 1970, and the encoded request) or cancelled
    /// (`due` is `nil`).
    package struct ReminderChange: Sendable, Hashable {
        package var name: String
        package var due: Int64?
        package var payload: [UInt8]
    }

    private let mode: Mode
    private(set) var effects: [Effect]
    private var cursor = 0
    /// The first way the replay departed from the journal, if it did (kept, so a handler that catches the
    /// error cannot hide it).
    private var divergence: CallError?
    /// The journal write of the actor's earlier messages, which an outward effect waits for (recording only).
    let earlier: (any DurabilityBarrier)?
    /// Reminder changes made by the message, journaled with it (recording only: on replay they already are).
    package private(set) var reminders: [ReminderChange] = []

    var isReplaying: Bool { mode == .replaying }

    func record(_ change: ReminderChange) {
        guard mode == .recording else { return }
        reminders.removeAll { $0.name == change.name }
        reminders.append(change)
    }

    /// A log that records the effects of a message running for the first time.
    ///
    /// - Parameter earlier: The journal write of the actor's earlier messages, if it may still be pending:
    ///   effects that reach outside the actor wait until it is durable (the output gate).
    package init(after earlier: (any DurabilityBarrier)? = nil) {
        mode = .recording
        effects = []
        self.earlier = earlier
    }

    /// A log that serves back the effects a journaled message recorded.
    package init(replaying effects: [Effect]) {
        mode = .replaying
        self.effects = effects
        self.earlier = nil
    }

    /// The recorded effects, encoded for the journal (`nil` if there were none).
    package func encoded() throws -> [UInt8]? {
        effects.isEmpty ? nil : try BinaryMessageCodec().encode(effects)
    }

    /// Decodes what ``encoded()`` wrote (in any version).
    package static func decode(_ bytes: [UInt8]) throws -> [Effect] {
        try BinaryMessageCodec().decode([Effect].self, from: bytes)
    }

    /// The earlier messages' write, while it is not known to be durable: what a reference made now must wait
    /// for before it sends.
    var pendingEarlier: (any DurabilityBarrier)? {
        guard let earlier, !earlier.isDurable else { return nil }
        return earlier
    }

    /// Runs the effect, or (on replay) returns its recorded result, or throws its recorded error, without
    /// running it.
    ///
    /// - Parameter gated: Whether the effect reaches outside the actor, so it must wait until the actor's
    ///   earlier messages are durable (`now` and `random` do not).
    /// - Throws: What the effect threw (as ``Failure/error`` makes it); ``CallError`` `storageFailure` when an
    ///   earlier message could not be journaled (the effect did not start), or on replay when the code asks
    ///   for a different effect than the journal recorded at this position.
    func run<T: Codable & Sendable>(_ name: String, gated: Bool = true, _ body: () async throws -> T)
        async throws -> T
    {
        switch mode {
        case .replaying:
            if let value: T = try replay(name) { return value }
            // A reminder's due time the original run did not record: computed now (it reaches nothing).
            return try await body()
        case .recording:
            if gated, let earlier { try await Self.waitUntilDurable(earlier, before: "this effect did not start") }
            let value: T
            let encoded: [UInt8]
            do {
                value = try await body()
                encoded = try BinaryMessageCodec().encode(value)
            } catch {
                let failure = Failure(error)
                effects.append(Effect(name: name, value: [], failure: failure))
                throw failure.error
            }
            effects.append(Effect(name: name, value: encoded))
            return value
        }
    }

    /// Whether `name` is a reminder's due time (``ActorContext/schedule(_:after:name:)``).
    ///
    /// Replay is lenient with these: whether a handler sets a reminder can depend on settings (a workflow's
    /// wake-up plan on its resume interval), the reminder itself is already in the journal, and its due time
    /// never reaches the state. So a recorded one that replay does not ask for is passed over, and one it asks
    /// for that was not recorded is computed again; only the other effects must match.
    static func isReminder(_ name: String) -> Bool { name.hasPrefix("plex.reminder.") }

    /// The recorded result of effect `name` (`nil`: a reminder's due time the journal does not have).
    private func replay<T: Codable & Sendable>(_ name: String) throws -> T? {
        if let divergence { throw divergence }
        while cursor < effects.count, Self.isReminder(effects[cursor].name), effects[cursor].name != name {
            cursor += 1
        }
        if Self.isReminder(name), cursor >= effects.count || effects[cursor].name != name { return nil }
        let position = cursor + 1
        guard cursor < effects.count else {
            throw diverge(
                "replay asked for effect '\(name)' at position \(position), but the journal recorded "
                    + "\(effects.count == 0 ? "none" : "only \(effects.count)")")
        }
        let effect = effects[cursor]
        guard effect.name == name else {
            throw diverge(
                "replay asked for effect '\(name)' at position \(position), the journal recorded '\(effect.name)'")
        }
        cursor += 1
        if let failure = effect.failure { throw failure.error }
        do {
            return try BinaryMessageCodec().decode(T.self, from: effect.value)
        } catch {
            throw diverge(
                "the journal's result of effect '\(name)' at position \(position) does not decode as \(T.self)")
        }
    }

    private func diverge(_ message: String) -> CallError {
        let error = CallError(.storageFailure, "non-determinism: \(message)")
        if divergence == nil { divergence = error }
        return error
    }

    /// Checks, once the replayed handler returned or threw, that it asked for exactly the recorded effects.
    ///
    /// - Throws: ``CallError`` `storageFailure` (non-determinism) naming the first position where the replay
    ///   departed from the journal, including effects the journal has and the replay never asked for.
    package func finishReplay() throws {
        if let divergence { throw divergence }
        while cursor < effects.count, Self.isReminder(effects[cursor].name) { cursor += 1 }
        guard cursor == effects.count else {
            throw diverge(
                "replay asked for \(cursor) effect\(cursor == 1 ? "" : "s"), but the journal recorded "
                    + "\(effects.count); the first one not asked for is '\(effects[cursor].name)' at position "
                    + "\(cursor + 1)")
        }
    }

    /// Returns once `write` is durable (at once if it already is).
    /// - Throws: ``CallError`` `storageFailure` when it failed; `consequence` says what did not happen.
    static func waitUntilDurable(_ write: any DurabilityBarrier, before consequence: String) async throws {
        guard !write.isDurable else { return }
        do {
            try await write.waitUntilDurable()
        } catch {
            throw CallError(
                .storageFailure, "an earlier message of this actor could not be journaled, so \(consequence): \(error)")
        }
    }
}
