internal import FoundationEssentials

/// The clock workflows read and wait on: milliseconds since 1970. Injected, so tests of retries and timers
/// move time by hand instead of waiting for it.
public protocol WorkflowClock: Sendable {
    /// Now, in milliseconds since 1970.
    func now() -> Int64
    /// Returns once `deadline` (milliseconds since 1970) has passed.
    /// - Throws: `CancellationError` when the task is cancelled first.
    func sleep(until deadline: Int64) async throws
}

/// The system's wall clock.
public struct SystemWorkflowClock: WorkflowClock {
    /// Creates the clock.
    public init() {}

    public func now() -> Int64 { Int64((Date().timeIntervalSince1970 * 1000).rounded(.down)) }

    public func sleep(until deadline: Int64) async throws {
        while true {
            let remaining = deadline - now()
            guard remaining > 0 else { return }
            try await Task.sleep(for: .milliseconds(remaining))
        }
    }
}
