import ArgumentParser
import Foundation
import PlexSpaces

/// `plex call … --repeat N`: the same request N times, `concurrency` at a time, with progress on stderr and a
/// summary on stdout (calls, failures, rate, latency percentiles, the last reply).
struct BulkCall {
    let actor: String
    let json: [UInt8]
    let count: Int
    let concurrency: Int
    let timeout: Duration
    let progress: Progress

    /// The actor of call `index`: `{n}` in the key becomes the index.
    func id(_ index: Int) throws -> ActorID {
        try ActorID(parsing: actor.replacingOccurrences(of: "{n}", with: "\(index)"))
    }

    func run(_ client: PlexClient) async throws {
        _ = try id(0)  // a malformed actor fails before any call
        let started = ContinuousClock.now
        var latencies: [Duration] = []  // of the calls that succeeded
        latencies.reserveCapacity(min(count, 1 << 20))
        var failures: [String: Int] = [:]
        var firstFailure: String?
        var lastReply: [UInt8]?
        var lost = false
        try await withThrowingTaskGroup(of: (Duration, Result<[UInt8], CallError>).self) { group in
            var next = 0
            func launch() throws {
                let target = try id(next)
                next += 1
                group.addTask {
                    let start = ContinuousClock.now
                    do {
                        let reply = try await client.call(target, json: json, timeout: timeout)
                        return (ContinuousClock.now - start, .success(reply))
                    } catch let error as CallError {
                        return (ContinuousClock.now - start, .failure(error))
                    }
                }
            }
            while next < min(concurrency, count) { try launch() }
            var done = 0
            while let (latency, result) = try await group.next() {
                done += 1
                switch result {
                case .success(let reply):
                    latencies.append(latency)
                    lastReply = reply
                case .failure(let error):
                    failures["\(error.code)", default: 0] += 1
                    if firstFailure == nil { firstFailure = "\(error)" }
                }
                progress.update(
                    "\(done)/\(count) calls, \(done - latencies.count) failed, "
                        + "\(Self.rate(latencies.count, since: started)) ok/s",
                    force: done == count)
                // The node went away: every call left would fail at once; stop and say so.
                if !client.isConnected { lost = true }
                if next < count && !lost { try launch() }
            }
        }
        progress.finish()
        let failed = failures.values.reduce(0, +)
        let sent = latencies.count + failed
        latencies.sort()
        let elapsed = ContinuousClock.now - started
        // The rate and the latencies are the successful calls'.
        print(
            "\(sent) calls to \(actor): \(latencies.count) ok, \(failed) failed in \(Self.seconds(elapsed)) "
                + "(\(Self.rate(latencies.count, since: started)) ok/s), "
                + "p50 \(Self.milliseconds(Self.percentile(latencies, 0.5))), "
                + "p99 \(Self.milliseconds(Self.percentile(latencies, 0.99)))")
        if let lastReply { print("last reply: \(String(decoding: lastReply, as: UTF8.self))") }
        if lost {
            FileHandle.standardError.write(
                Data("plex: the connection to the node was lost; \(count - sent) call(s) were not sent\n".utf8))
        }
        if failed > 0 {
            let kinds = failures.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
            FileHandle.standardError.write(
                Data("plex: \(failed) call(s) failed (\(kinds)); first: \(firstFailure ?? "")\n".utf8))
        }
        if lost || failed > 0 { throw ExitCode(1) }
    }

    static func percentile(_ sorted: [Duration], _ fraction: Double) -> Duration {
        sorted.isEmpty ? .zero : sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
    }

    static func rate(_ done: Int, since start: ContinuousClock.Instant) -> Int {
        let seconds = (ContinuousClock.now - start) / .seconds(1)
        return seconds > 0 ? Int(Double(done) / seconds) : 0
    }

    static func seconds(_ duration: Duration) -> String {
        String(format: "%.2f s", duration / .seconds(1))
    }

    static func milliseconds(_ duration: Duration) -> String {
        String(format: "%.2f ms", duration / .milliseconds(1))
    }
}
