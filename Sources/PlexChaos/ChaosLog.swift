internal import Foundation

/// Progress lines on stderr, each stamped with the seconds since the run started.
public struct ChaosLog: Sendable {
    private let start = ContinuousClock.now
    private let isEnabled: Bool

    /// Creates a log whose clock starts now; a disabled one writes nothing.
    public init(enabled: Bool = true) {
        isEnabled = enabled
    }

    /// Seconds since the run started.
    public var elapsed: Duration { ContinuousClock.now - start }

    /// Writes `message` as one line on stderr.
    public func callAsFunction(_ message: String) {
        guard isEnabled else { return }
        let seconds = Double(elapsed.milliseconds) / 1000
        let stamp = String(format: "%7.1f", seconds)
        FileHandle.standardError.write(Data("[chaos \(stamp)s] \(message)\n".utf8))
    }
}
