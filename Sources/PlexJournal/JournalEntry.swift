public import PlexCore

/// One record in an actor's journal, in its per-actor sequence.
public struct JournalEntry: Sendable, Hashable {
    /// What the entry records.
    public enum Kind: UInt8, Sendable, CaseIterable {
        /// A message the actor processed (payload: the encoded request; ``JournalEntry/reply``: the encoded
        /// response, so one row records both).
        case message = 1
        /// The result of a `context.run` side effect, in order (payload: the encoded result).
        case sideEffect = 2
        /// A timer or reminder set (payload: its encoded description).
        case timer = 3
        /// The reply to a message (payload: the encoded response).
        case reply = 4
        /// A journaled clock reading or random value (payload: the encoded value).
        case nondeterminism = 5
    }

    /// The actor the entry belongs to.
    public var actor: ActorID
    /// The entry's position in the actor's journal, from 1.
    public var sequence: UInt64
    /// What the entry records.
    public var kind: Kind
    /// When it was written: milliseconds since 1970 (wall clock).
    public var time: Int64
    /// The call the entry belongs to, if any.
    public var callID: CallID?
    /// The caller's idempotency key, if any.
    public var idempotencyKey: String?
    /// The encoded content.
    public var payload: [UInt8]
    /// For a message: the encoded reply it produced, if it is recorded with the message.
    public var reply: [UInt8]?
    /// For a message: the encoded results of the side effects it ran (`context.run`), if any.
    public var effects: [UInt8]?

    /// Creates an entry.
    public init(
        actor: ActorID, sequence: UInt64, kind: Kind, time: Int64, callID: CallID? = nil,
        idempotencyKey: String? = nil, payload: [UInt8], reply: [UInt8]? = nil, effects: [UInt8]? = nil
    ) {
        self.reply = reply
        self.effects = effects
        self.actor = actor
        self.sequence = sequence
        self.kind = kind
        self.time = time
        self.callID = callID
        self.idempotencyKey = idempotencyKey
        self.payload = payload
    }
}

/// An actor's encoded state as of a sequence number.
public struct Checkpoint: Sendable, Hashable {
    /// The actor.
    public var actor: ActorID
    /// The last entry the state includes.
    public var sequence: UInt64
    /// When it was written: milliseconds since 1970.
    public var time: Int64
    /// The encoded state.
    public var state: [UInt8]

    /// Creates a checkpoint.
    public init(actor: ActorID, sequence: UInt64, time: Int64, state: [UInt8]) {
        self.actor = actor
        self.sequence = sequence
        self.time = time
        self.state = state
    }
}

/// Size and counts of a journal, for `plex journal stats`.
public struct JournalStatistics: Sendable, Hashable {
    /// Entries stored.
    public var entries: Int
    /// Actors with at least one entry or checkpoint.
    public var actors: Int
    /// Checkpoints stored.
    public var checkpoints: Int
    /// Bytes of the database file and its WAL.
    public var bytes: Int
    /// Transactions committed by the group committer since the journal was opened.
    public var commits: Int
    /// Entries appended since the journal was opened.
    public var appended: Int
    /// When the oldest and the newest checkpoint were written (milliseconds since 1970), if any.
    public var checkpointTimes: ClosedRange<Int64>?
    /// Copies of actors kept aside because they did not extend the history held here
    /// (``Journal/divergedCopies(of:)``).
    public var divergedCopies = 0
}
