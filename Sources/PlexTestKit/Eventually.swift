/// Thrown when a condition did not hold before its deadline.
public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let what: String
    public var description: String { "condition not met in time: \(what)" }
}

/// Polls `condition` every few milliseconds until it holds, or throws ``DeadlineExceeded`` after `within`.
public func eventually(
    _ what: String = "condition", within: Duration = .seconds(10), poll: Duration = .milliseconds(10),
    _ condition: () async throws -> Bool
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + within
    while true {
        if (try? await condition()) == true { return }
        if clock.now >= deadline { throw DeadlineExceeded(what: what) }
        try await Task.sleep(for: poll)
    }
}
