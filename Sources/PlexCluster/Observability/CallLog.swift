internal import FoundationEssentials
public import PlexCore
internal import Synchronization

/// A turn the dashboard shows: slow, or failed.
public struct RecentCall: Sendable, Hashable {
    /// The actor.
    public var actor: ActorID
    /// How long the turn took.
    public var duration: Duration
    /// The error's code and message, if it failed.
    public var error: String?
    /// When it ended, in milliseconds since 1970.
    public var endedAt: Int64
}

/// The slowest turns of the last minute and the latest failed turns on one node, for the operator's
/// dashboard. A turn that is neither slower than the slowest kept ones nor failed costs three relaxed atomic
/// loads (the log being on, and its two thresholds).
///
/// Off until its reader (the gateway's dashboard) turns it on: a node without one does not time its turns
/// for it.
final class CallLog: Sendable {
    /// How many of each are kept.
    static let kept = 10
    /// How long a slow turn stays among the slowest.
    static let window: UInt64 = 60_000_000_000

    private struct State {
        var slowest: [(call: RecentCall, at: UInt64)] = []
        var failed: [RecentCall] = []
    }

    private let state = Mutex(State())
    private let enabled = Atomic(false)
    /// The shortest duration (nanoseconds) a turn needs to enter the slowest kept ones; 0 while there is room.
    private let threshold = Atomic<UInt64>(0)
    /// When (monotonic nanoseconds) the oldest kept slow turn leaves the window: from then any turn may get in.
    private let oldestLeaves = Atomic<UInt64>(0)

    /// Whether turns are recorded.
    var isEnabled: Bool { enabled.load(ordering: .relaxed) }

    /// Records turns from now on.
    func enable() { enabled.store(true, ordering: .relaxed) }

    /// A turn of `actor` that took `nanoseconds` ended at `now` (monotonic) with `error`.
    func record(_ actor: ActorID, nanoseconds: UInt64, now: UInt64, error: CallError?) {
        // The runtime's own turns (workflow steps, the workflow index the dashboard itself asks) are not the
        // slow calls an operator looks for; their failures are still listed.
        let slow =
            (nanoseconds > threshold.load(ordering: .relaxed) || now >= oldestLeaves.load(ordering: .relaxed))
            && !actor.typeName.hasPrefix("plex.")
        guard slow || error != nil else { return }
        let call = RecentCall(
            actor: actor, duration: .nanoseconds(Int64(clamping: nanoseconds)),
            error: error.map { "\($0.code): \($0.message)" }, endedAt: Self.wallClockMilliseconds())
        state.withLock { state in
            if error != nil {
                state.failed.append(call)
                if state.failed.count > Self.kept { state.failed.removeFirst() }
            }
            guard slow else { return }
            state.slowest.removeAll { now &- $0.at > Self.window }
            state.slowest.append((call, now))
            state.slowest.sort { $0.call.duration > $1.call.duration }
            if state.slowest.count > Self.kept { state.slowest.removeLast(state.slowest.count - Self.kept) }
            // Full: only a slower turn gets in (until the window drops the kept ones).
            let full = state.slowest.count == Self.kept
            let shortest = state.slowest.last.map { UInt64(clamping: $0.call.duration.clampedNanoseconds) } ?? 0
            threshold.store(full ? shortest : 0, ordering: .relaxed)
            oldestLeaves.store((state.slowest.map(\.at).min() ?? 0) &+ Self.window, ordering: .relaxed)
        }
    }

    /// The slowest turns of the last minute, slowest first.
    func slowest(now: UInt64) -> [RecentCall] {
        state.withLock { state in
            state.slowest.removeAll { now &- $0.at > Self.window }
            if state.slowest.count < Self.kept { threshold.store(0, ordering: .relaxed) }
            return state.slowest.map(\.call)
        }
    }

    /// The latest failed turns, newest first.
    var failed: [RecentCall] { state.withLock { $0.failed.reversed() } }

    private static func wallClockMilliseconds() -> Int64 {
        Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
    }
}
