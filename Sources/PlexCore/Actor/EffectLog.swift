/// The side effects one message performed, in order: recorded while it runs, served back when a durable
/// actor replays it, so no effect runs twice for a message that was durably processed.
///
/// Guarded by the activation's turn: only the handler of the message it belongs to touches it.
public final class EffectLog: @unchecked Sendable {
    /// One recorded effect: the name the handler gave it and its encoded result.
    public struct Effect: Codable, Sendable, Hashable {
        public var name: String
        public var value: [UInt8]
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
    /// Reminder changes made by the message, journaled with it (recording only: on replay they already are).
    package private(set) var reminders: [ReminderChange] = []

    var isReplaying: Bool { mode == .replaying }

    func record(_ change: ReminderChange) {
        guard mode == .recording else { return }
        reminders.removeAll { $0.name == change.name }
        reminders.append(change)
    }

    /// A log that records the effects of a message running for the first time.
    package init() {
        mode = .recording
        effects = []
    }

    /// A log that serves back the effects a journaled message recorded.
    package init(replaying effects: [Effect]) {
        mode = .replaying
        self.effects = effects
    }

    /// The recorded effects, encoded for the journal (`nil` if there were none).
    package func encoded() throws -> [UInt8]? {
        effects.isEmpty ? nil : try BinaryMessageCodec().encode(effects)
    }

    /// Decodes what ``encoded()`` wrote.
    package static func decode(_ bytes: [UInt8]) throws -> [Effect] {
        try BinaryMessageCodec().decode([Effect].self, from: bytes)
    }

    /// Runs the effect, or (on replay) returns its recorded result without running it.
    ///
    /// - Throws: ``CallError`` `storageFailure` on replay when the code asks for a different effect than the
    ///   journal recorded at this position (the handler is not deterministic, or its code changed).
    func run<T: Codable & Sendable>(_ name: String, _ body: () async throws -> T) async throws -> T {
        switch mode {
        case .replaying:
            guard cursor < effects.count else {
                throw CallError(
                    .storageFailure,
                    "non-determinism: replay asked for effect '\(name)' at position \(cursor), the journal has \(effects.count)"
                )
            }
            let effect = effects[cursor]
            guard effect.name == name else {
                throw CallError(
                    .storageFailure,
                    "non-determinism: replay asked for effect '\(name)' at position \(cursor), the journal recorded '\(effect.name)'"
                )
            }
            cursor += 1
            return try BinaryMessageCodec().decode(T.self, from: effect.value)
        case .recording:
            let value = try await body()
            effects.append(Effect(name: name, value: try BinaryMessageCodec().encode(value)))
            return value
        }
    }
}
