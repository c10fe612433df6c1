import Logging
import PlexCore
import Synchronization

@testable import PlexWorkflow

/// A clock that moves only when a test moves it.
final class ManualClock: WorkflowClock {
    private struct Sleeper {
        let deadline: Int64
        let continuation: CheckedContinuation<Void, any Error>
    }

    private let state: Mutex<(now: Int64, sleepers: [Int: Sleeper], next: Int)>

    init(now: Int64 = 1_000_000) {
        state = Mutex((now, [:], 0))
    }

    func now() -> Int64 { state.withLock { $0.now } }

    /// How many tasks sleep on the clock now.
    var sleepers: Int { state.withLock { $0.sleepers.count } }

    func advance(by milliseconds: Int64) {
        let due = state.withLock { state -> [Sleeper] in
            state.now += milliseconds
            let now = state.now
            let due = state.sleepers.filter { $0.value.deadline <= now }
            for key in due.keys { state.sleepers.removeValue(forKey: key) }
            return Array(due.values)
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    func sleep(until deadline: Int64) async throws {
        let id = state.withLock { state in
            defer { state.next += 1 }
            return state.next
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let now = state.withLock { state -> Bool in
                    if state.now >= deadline || Task.isCancelled { return true }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return false
                }
                if now { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.sleepers.removeValue(forKey: id) }?.continuation.resume(throwing: CancellationError())
        }
        try Task.checkCancellation()
    }
}

/// An instance kept in memory: the same ``WorkflowRecord`` functions the durable actor journals, with a counter
/// of writes and a switch that makes writes fail.
final class MemoryDriver: WorkflowDriver {
    let instanceID: String
    let changes = Notifier()
    private let state: Mutex<(record: WorkflowRecord, writes: Int, failing: Bool)>
    private let reads = Mutex(0)

    init(id: String = "wf-1", type: String = "test") throws {
        instanceID = id
        var record = WorkflowRecord()
        _ = try record.start(type: type, input: [], now: 0)
        state = Mutex((record, 0, false))
    }

    var record: WorkflowRecord { state.withLock { $0.record } }
    var writes: Int { state.withLock { $0.writes } }
    var cancelRequested: Bool { state.withLock { $0.record.cancelRequested } }

    func failWrites(_ failing: Bool) { state.withLock { $0.failing = failing } }

    func record(_ steps: [WorkflowStep], now: Int64) async throws -> [WorkflowStep] {
        try state.withLock { state in
            if state.failing { throw CallError(.storageFailure, "writes fail in this test") }
            state.writes += 1
            return try steps.map { try state.record.record($0) }
        }
    }

    func takeEvent(position: Int, name: String, deadlineReached: Bool, now: Int64) async throws -> WorkflowStep? {
        try state.withLock { state in
            // A message to the durable actor, journaled whether or not it takes an event.
            state.writes += 1
            return try state.record.takeEvent(
                position: position, name: name, deadlineReached: deadlineReached, now: now)
        }
    }

    func hasEvent(_ name: String) async throws -> Bool {
        reads.withLock { $0 += 1 }
        return state.withLock { state in state.record.inbox.contains { $0.name == name } }
    }

    /// How often the code looked into the inbox.
    var inboxReads: Int { reads.withLock { $0 } }

    func finish(_ ending: WorkflowRecord.Ending, steps: [WorkflowStep], now: Int64) async throws {
        try state.withLock { state in
            if state.failing { throw CallError(.storageFailure, "writes fail in this test") }
            state.writes += 1
            for step in steps { _ = try state.record.record(step) }
            state.record.finish(ending, now: now)
        }
    }

    func signal<T: Codable>(_ name: String, _ payload: T) throws {
        try state.withLock { state in try state.record.signal(name, payload: JSONMessageCodec().encode(payload)) }
        changes.notify()
    }

    func requestCancel() {
        _ = state.withLock { $0.record.requestCancel() }
        changes.notify()
    }
}

/// Counts calls by name (activities that count their attempts).
final class Counter: Sendable {
    private let counts = Mutex<[String: Int]>([:])
    @discardableResult
    func bump(_ name: String) -> Int {
        counts.withLock {
            $0[name, default: 0] += 1; return $0[name]!
        }
    }
    func count(_ name: String) -> Int { counts.withLock { $0[name, default: 0] } }
    var log: [String: Int] { counts.withLock { $0 } }
}

/// Runs workflow code on an executor over `driver`, as the durable actor does after an activation begins.
func launch(
    _ driver: MemoryDriver, clock: ManualClock, activities: ActivityRegistry = ActivityRegistry(),
    batchWindow: Int64 = 0, _ body: @escaping @Sendable (WorkflowContext) async throws -> [UInt8]
) -> Task<Void, Never> {
    let executor = WorkflowExecutor(
        driver: driver, history: driver.record.steps, clock: clock, activities: activities,
        logger: Logger(label: "test"), batchWindow: batchWindow)
    return Task { await executor.run(body) }
}

func encoded<T: Codable>(_ value: T) throws -> [UInt8] { try BinaryMessageCodec().encode(value) }
func decoded<T: Codable>(_ type: T.Type, _ bytes: [UInt8]?) throws -> T {
    try BinaryMessageCodec().decode(T.self, from: bytes ?? [])
}

extension MemoryDriver {
    func startChild(id: String, type: String, input: [UInt8], now: Int64) async throws {
        throw WorkflowError(.invalidArgument, "the memory driver runs no child workflows")
    }

    func describeChild(id: String) async throws -> WorkflowDescription {
        throw WorkflowError(.invalidArgument, "the memory driver runs no child workflows")
    }

    func cancelChild(id: String) async throws {}
}

extension MemoryDriver {
    func runOnWorker(input: [UInt8], context: ActivityContext, timeout: Duration) async throws -> [UInt8] {
        throw WorkflowError(.invalidArgument, "the memory driver has no worker pool")
    }
}

extension MemoryDriver {
    func unload(_ unload: Bool) async {}
}
