public import PlexCore

/// One step of a workflow instance's history: an activity, a timer, an awaited event or a recorded value.
///
/// Steps are numbered in the order the workflow's code asks for them. On replay the code asks again, and each
/// step it asks for must match the recorded one at its position (kind and name); a resolved step returns its
/// recorded outcome without running. Times are milliseconds since 1970 on the workflow clock.
public struct WorkflowStep: Sendable, Hashable, Codable {
    /// What kind of step.
    public enum Kind: String, Sendable, Hashable, Codable {
        /// An activity (``WorkflowContext/activity(_:_:retry:)`` or ``WorkflowContext/run(_:retry:_:)``).
        case activity
        /// A durable timer (``WorkflowContext/sleep(for:)``).
        case timer
        /// An awaited external event (``WorkflowContext/waitForEvent(_:as:timeout:)``).
        case event
        /// A recorded value: the clock, a random number, a UUID, a version marker or the winner of
        /// ``WorkflowContext/first(_:)``.
        case value
        /// A child workflow (``WorkflowContext/child(_:id:input:)``); ``WorkflowStep/target`` is its instance id.
        case child
    }

    /// How a resolved step ended.
    public enum Outcome: Sendable, Hashable, Codable {
        /// It produced a value (encoded with the binary codec; empty for a timer).
        case value([UInt8])
        /// It failed for good.
        case failure(EffectLog.Failure)
        /// An event wait whose timeout passed first.
        case timedOut

        /// What the synthesized encoding writes into the outcome's keyed container.
        func write(into container: BinaryKeyedWriter) throws {
            switch self {
            case .value(let bytes): try container.nested(forKey: "value").encode(bytes, forKey: "_0")
            case .failure(let failure): try container.nested(forKey: "failure").encode(failure, forKey: "_0")
            case .timedOut: _ = try container.nested(forKey: "timedOut")
            }
        }
    }

    /// The step's position in the history (0 for the first).
    public var position: Int
    /// What kind of step.
    public var kind: Kind
    /// The activity's or event's name (the value kind: `now`, `random`, `uuid`).
    public var name: String
    /// How it ended; `nil` while it is pending.
    public var outcome: Outcome?
    /// Attempts made so far (activities).
    public var attempts: Int
    /// When it was first asked for.
    public var startedAt: Int64
    /// When it is due: a timer's fire time, an event wait's deadline, an activity's next attempt.
    public var dueAt: Int64?
    /// The last failed attempt's error (activities).
    public var lastFailure: EffectLog.Failure?
    /// When it was resolved.
    public var completedAt: Int64?
    /// The child instance's id (child steps).
    public var target: String?

    /// Creates a step.
    public init(
        position: Int, kind: Kind, name: String, outcome: Outcome? = nil, attempts: Int = 0, startedAt: Int64,
        dueAt: Int64? = nil, lastFailure: EffectLog.Failure? = nil, completedAt: Int64? = nil, target: String? = nil
    ) {
        self.position = position
        self.kind = kind
        self.name = name
        self.outcome = outcome
        self.attempts = attempts
        self.startedAt = startedAt
        self.dueAt = dueAt
        self.lastFailure = lastFailure
        self.completedAt = completedAt
        self.target = target
    }

    /// Whether the step has its outcome.
    public var isResolved: Bool { outcome != nil }

    /// The synthesized encoding, written out: the binary codec (journal entries, replies) takes a direct path
    /// that writes the same bytes without a container box and a generic call per field. Every step of every
    /// workflow is encoded this way at least once (`WorkflowStepCodingTests` compares both with the
    /// synthesized form).
    public func encode(to encoder: any Encoder) throws {
        if let binary = encoder as? BinaryEncoder {
            let fields = binary.keyedWriter()
            try fields.encode(position, forKey: "position")
            try fields.encode(kind.rawValue, forKey: "kind")
            try fields.encode(name, forKey: "name")
            if let outcome { try outcome.write(into: fields.nested(forKey: "outcome")) }
            try fields.encode(attempts, forKey: "attempts")
            try fields.encode(startedAt, forKey: "startedAt")
            if let dueAt { try fields.encode(dueAt, forKey: "dueAt") }
            if let lastFailure { try fields.encode(lastFailure, forKey: "lastFailure") }
            if let completedAt { try fields.encode(completedAt, forKey: "completedAt") }
            if let target { try fields.encode(target, forKey: "target") }
            return
        }
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(position, forKey: .position)
        try container.encode(kind, forKey: .kind)
        try container.encode(name, forKey: .name)
        try container.encodeIfPresent(outcome, forKey: .outcome)
        try container.encode(attempts, forKey: .attempts)
        try container.encode(startedAt, forKey: .startedAt)
        try container.encodeIfPresent(dueAt, forKey: .dueAt)
        try container.encodeIfPresent(lastFailure, forKey: .lastFailure)
        try container.encodeIfPresent(completedAt, forKey: .completedAt)
        try container.encodeIfPresent(target, forKey: .target)
    }

    /// How the step reads in an error message.
    var label: String { "\(kind.rawValue) '\(name)'" }

    /// Whether `newer` is a later state of this step (same step, resolved now, or more attempts).
    func isSuperseded(by newer: WorkflowStep) -> Bool {
        guard !isResolved else { return false }
        return newer.isResolved || newer.attempts > attempts || (newer.dueAt != nil && dueAt == nil)
            || (newer.target != nil && target == nil)
    }
}

/// Where a workflow instance is in its life.
public enum WorkflowStatus: String, Sendable, Hashable, Codable, CaseIterable {
    /// No instance has this id yet.
    case pending
    /// Started and not finished.
    case running
    /// Finished with a result.
    case completed
    /// Finished with an error (its code threw, an activity failed for good, or replay found non-determinism).
    case failed
    /// Cancelled on request; its compensation ran.
    case cancelled
    /// Stopped on request without running anything more.
    case terminated

    /// Whether the instance has finished.
    public var isClosed: Bool { self != .pending && self != .running }
}
