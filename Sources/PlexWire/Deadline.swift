public import NIOCore

/// When a call stops waiting: a point on the monotonic clock NIO's deadlines use, or never.
///
/// One type from the caller to the wire and back. A caller's timeout becomes a deadline once, where the call
/// starts (``after(_:)``); the wire carries what is left of it (``wireTimeout(now:)``, 0 for none), and the
/// receiving node turns that back into a deadline on its own clock (``init(wireTimeout:now:)``), so clocks of
/// two machines are never compared.
public struct Deadline: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Nanoseconds on the monotonic clock (`NIODeadline.uptimeNanoseconds`); `UInt64.max` is never.
    public let uptimeNanoseconds: UInt64

    /// A deadline at `uptimeNanoseconds` on the monotonic clock.
    @inlinable
    public init(uptimeNanoseconds: UInt64) {
        self.uptimeNanoseconds = uptimeNanoseconds
    }

    /// No deadline.
    public static let never = Deadline(uptimeNanoseconds: .max)

    /// Now on the monotonic clock, in nanoseconds.
    @inlinable
    public static func now() -> UInt64 { NIODeadline.now().uptimeNanoseconds }

    /// `timeout` from `now`.
    @inlinable
    public static func after(_ timeout: Duration, now: UInt64 = Deadline.now()) -> Deadline {
        let (seconds, attoseconds) = timeout.components
        guard seconds >= 0, attoseconds >= 0 || seconds > 0 else { return Deadline(uptimeNanoseconds: now) }
        let (whole, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        let nanoseconds = overflow ? UInt64.max : whole &+ UInt64(max(0, attoseconds) / 1_000_000_000)
        return Deadline(uptimeNanoseconds: now &+ min(nanoseconds, .max &- now))
    }

    /// The deadline a call body carries: `timeout` nanoseconds from `now`, never for 0.
    @inlinable
    public init(wireTimeout timeout: UInt64, now: UInt64) {
        self = timeout == 0 ? .never : Deadline(uptimeNanoseconds: now &+ min(timeout, .max &- now))
    }

    /// What a call body carries: the nanoseconds left after `now` (at least 1, so a passed deadline is not
    /// read as none), or 0 for never.
    @inlinable
    public func wireTimeout(now: UInt64) -> UInt64 {
        guard self != .never else { return 0 }
        return uptimeNanoseconds > now ? uptimeNanoseconds - now : 1
    }

    /// Whether the deadline is at or before `now`.
    @inlinable
    public func hasPassed(at now: UInt64) -> Bool { uptimeNanoseconds <= now }

    /// This deadline plus `extra` (a grace period), never past ``never``.
    public func adding(_ extra: Duration) -> Deadline {
        guard self != .never else { return self }
        let extra = extra.clampedNanoseconds
        return Deadline(uptimeNanoseconds: uptimeNanoseconds &+ min(extra, .max &- uptimeNanoseconds))
    }

    @inlinable
    public static func < (a: Deadline, b: Deadline) -> Bool { a.uptimeNanoseconds < b.uptimeNanoseconds }

    public var description: String {
        self == .never ? "never" : "\(uptimeNanoseconds) ns"
    }
}
