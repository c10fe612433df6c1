internal import Metrics
internal import Synchronization

/// The long polls a gateway has in progress (`GET /v1/workflows/{id}/result?wait_ms=`): how many, and the
/// process's `plex_http_result_waits` gauge.
final class ResultWaits: Sendable {
    private let count = Mutex(0)
    private let meter = Meter(label: "plex_http_result_waits")

    /// How many wait now.
    var current: Int { count.withLock { $0 } }

    /// Runs `wait` counted as one of them.
    func during<T>(_ wait: () async throws -> T) async rethrows -> T {
        count.withLock { $0 += 1 }
        meter.increment()
        defer {
            count.withLock { $0 -= 1 }
            meter.decrement()
        }
        return try await wait()
    }
}
