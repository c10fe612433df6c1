internal import PlexCore

/// The identity of one history of a durable actor: 128 random bits, created with the actor's first entry.
///
/// Copies of an actor that descend from the same first entry (by handoffs) share it; an actor started from
/// nothing on two nodes has two. Journals from before lineages give every history they hold
/// ``legacy``, the same on every node, because they cannot tell their copies apart.
public struct LineageID: Sendable, Hashable, Codable, CustomStringConvertible {
    /// The 16 bytes.
    public let bytes: [UInt8]

    /// A lineage from its 16 bytes; `nil` for any other count.
    public init?(bytes: [UInt8]) {
        guard bytes.count == 16 else { return nil }
        self.bytes = bytes
    }

    /// A new lineage: 128 bits from the system's random number generator.
    public static func random() -> LineageID {
        var generator = SystemRandomNumberGenerator()
        let (high, low) = (generator.next() as UInt64, generator.next() as UInt64)
        let bytes =
            (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
            + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        return LineageID(bytes: bytes)!
    }

    /// The lineage of every history written before lineages existed (schema 6 and earlier): all zeros.
    public static let legacy = LineageID(bytes: Array(repeating: 0, count: 16))!

    /// 32 hexadecimal digits.
    public var description: String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}

/// Where a node's copy of a durable actor stands in its history: which history, at which epoch, how far.
public struct Lineage: Sendable, Hashable {
    /// The history.
    public var id: LineageID
    /// The copy's handoff epoch (0 until the actor was first transferred).
    public var epoch: UInt64
    /// The highest sequence the copy holds (an entry's or its checkpoint's).
    public var lastSequence: UInt64

    /// Creates a lineage.
    public init(id: LineageID, epoch: UInt64, lastSequence: UInt64) {
        self.id = id
        self.epoch = epoch
        self.lastSequence = lastSequence
    }
}

/// What ``Journal/adopt(_:from:)`` did with a transfer.
public enum AdoptOutcome: Sendable, Hashable {
    /// The transfer is this node's copy of the actor now.
    case stored
    /// This node already has that copy or a later one of the same history (a repeat, a stale epoch, or a
    /// transfer that carries nothing): nothing changed.
    case alreadyHad
    /// The transfer does not extend what this node holds (another history, or one that would cut this
    /// node's short): refused and kept aside (``Journal/divergedCopies(of:)``); this node's copy, described
    /// by `held`, is unchanged.
    case diverged(held: Lineage)
}

/// How a transfer's entries compare with the receiver's where both have the same sequence.
enum Overlap: Sendable, Hashable {
    /// Every entry of the transfer up to the receiver's last sequence is stored here, identical.
    case agrees
    /// Those the receiver still stores are identical; some it no longer has (pruned under a checkpoint).
    case unverifiable
    /// At least one differs: the two copies went separate ways.
    case differs
}

/// The rule of ``Journal/adopt(_:from:)``, as a value: a history is extended, never replaced.
struct AdoptDecision: Sendable, Hashable {
    /// What the receiver holds of the actor.
    struct Held: Sendable, Hashable {
        /// Whether it has entries or a checkpoint.
        var hasData: Bool
        /// Its lineage, if it has data.
        var lineage: LineageID?
        /// Whether the ownership table has a row, and its epoch and tombstone.
        var isRecorded: Bool
        var epoch: UInt64
        var movedTo: NodeID?
        /// The highest sequence it holds.
        var lastSequence: UInt64
    }

    /// What to do.
    enum Action: Sendable, Hashable {
        /// Store the transfer. `settingAside`: first keep this node's own (stale, handed-away) copy aside,
        /// as it is of another history.
        case store(settingAside: Bool)
        /// Ignore it: nothing in it is missing here.
        case ignore
        /// Refuse it and keep it aside.
        case keepAside
    }

    /// Decides what to do with `transfer`, sent by `sender`, given what the receiver holds and how the
    /// entries both have compare (`overlap`, needed only for a transfer of the same lineage).
    ///
    /// - Nothing here (no entries, no checkpoint): store it, unless this node handed the (empty) actor away
    ///   at that epoch or a later one and the transfer comes from another node than the one it handed it to.
    /// - Data here and the transfer carries none: ignore it (nothing in it to keep).
    /// - The same lineage: store it if its epoch is higher, it reaches at least as far, and the entries both
    ///   hold agree (an extension); ignore it if the epoch is not higher and it holds nothing this copy lacks
    ///   (a repeat, or a stale copy this one extends); otherwise keep it aside. A copy of a passed epoch that
    ///   reaches further, or differs, went its own way after the two split (a reclaim raced a handoff): it
    ///   is kept aside and reported, never silently dropped.
    /// - Another lineage: store it only if this node handed its copy away (a tombstone) to the very node
    ///   that sends it: that node refused this copy or replaced it the same way, so it is kept aside there
    ///   (and here too); otherwise keep it aside. Epochs of different histories are not compared.
    static func decide(held: Held, transfer: ActorTransfer, from sender: NodeID, overlap: Overlap) -> Action {
        let passedEpoch = held.isRecorded && transfer.epoch <= held.epoch
        let fromSuccessor = held.movedTo != nil && held.movedTo == sender
        guard held.hasData else {
            // Nothing to lose here. Only a handed-away (empty) copy fences stale epochs from other nodes.
            return passedEpoch && held.movedTo != nil && !fromSuccessor ? .ignore : .store(settingAside: false)
        }
        guard let sequences = transfer.sequences else { return .ignore }
        if let lineage = held.lineage, lineage == transfer.lineage {
            if passedEpoch {
                return sequences.upperBound > held.lastSequence || overlap == .differs ? .keepAside : .ignore
            }
            guard sequences.upperBound >= held.lastSequence, overlap != .differs else { return .keepAside }
            return .store(settingAside: false)
        }
        return fromSuccessor ? .store(settingAside: true) : .keepAside
    }
}
