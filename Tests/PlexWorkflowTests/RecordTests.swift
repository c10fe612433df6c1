import PlexCore
import Testing

@testable import PlexWorkflow

@Suite("Workflow record and retry policy")
struct RecordTests {
    @Test("starting is idempotent by id; another type is refused")
    func start() throws {
        var record = WorkflowRecord()
        #expect(try record.start(type: "order", input: [1], now: 5) == .started)
        #expect(try record.start(type: "order", input: [2], now: 6) == .existing)
        #expect(record.input == [1])
        #expect(throws: WorkflowError.self) { try record.start(type: "other", input: [], now: 7) }
    }

    @Test("a resolved step is never overwritten; a step at a skipped position is refused")
    func recordRules() throws {
        var record = WorkflowRecord()
        _ = try record.start(type: "t", input: [], now: 0)
        let done = WorkflowStep(
            position: 0, kind: .activity, name: "a", outcome: .value([1]), attempts: 1, startedAt: 0)
        _ = try record.record(done)
        var stale = done
        stale.outcome = .value([2])
        stale.attempts = 2
        #expect(try record.record(stale).outcome == .value([1]))
        #expect(throws: WorkflowError.self) {
            try record.record(WorkflowStep(position: 5, kind: .timer, name: "sleep", startedAt: 0))
        }
        let other = WorkflowStep(position: 0, kind: .timer, name: "sleep", startedAt: 0)
        #expect(throws: WorkflowError.self) { try record.record(other) }
    }

    @Test("the wake-up reminder follows what the instance waits on")
    func wakePlan() throws {
        var record = WorkflowRecord()
        _ = try record.start(type: "t", input: [], now: 0)
        #expect(record.wakePlan(now: 0, resumeAfter: 5_000) == .arm(5_000))
        #expect(record.wakePlan(now: 100, resumeAfter: 5_000) == .keep)
        _ = try record.record(WorkflowStep(position: 0, kind: .timer, name: "sleep", startedAt: 100, dueAt: 60_000))
        #expect(record.wakePlan(now: 100, resumeAfter: 5_000) == .arm(60_000))
        var fired = record.steps[0]
        fired.outcome = .value([])
        _ = try record.record(fired)
        #expect(record.wakePlan(now: 60_000, resumeAfter: 5_000) == .arm(65_000))
        _ = try record.record(WorkflowStep(position: 1, kind: .event, name: "approval", startedAt: 60_001))
        #expect(record.wakePlan(now: 60_001, resumeAfter: 5_000) == .cancel)
        record.finish(.completed([]), now: 70_000)
        #expect(record.wakePlan(now: 70_000, resumeAfter: 5_000) == .keep)
    }

    @Test("backoff grows by the coefficient up to the cap; jitter only shortens it; bad policies are refused")
    func policy() throws {
        let policy = RetryPolicy(
            initialInterval: .seconds(1), backoffCoefficient: 2, maximumInterval: .seconds(5), jitter: 0.5)
        #expect((1...5).map { policy.baseDelayMilliseconds(afterAttempt: $0) } == [1_000, 2_000, 4_000, 5_000, 5_000])
        #expect(policy.delayMilliseconds(afterAttempt: 2, unit: 0) == 2_000)
        #expect(policy.delayMilliseconds(afterAttempt: 2, unit: 0.999) == 1_001)
        #expect(throws: WorkflowError.self) { try RetryPolicy(backoffCoefficient: 0.5).validate() }
        #expect(throws: WorkflowError.self) { try RetryPolicy(maximumAttempts: 0).validate() }
        #expect(throws: WorkflowError.self) { try RetryPolicy(jitter: 2).validate() }
        #expect(throws: WorkflowError.self) {
            try RetryPolicy(initialInterval: .seconds(2), maximumInterval: .seconds(1)).validate()
        }
        try RetryPolicy.default.validate()
    }
}
