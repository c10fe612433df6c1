import PlexCore
import PlexTestKit
import Synchronization
import Testing

@testable import PlexWorkflow

/// Steps started together: positions in start order, results merged deterministically, races journaled.
@Suite("Workflow concurrency and queries", .timeLimit(.minutes(1)))
struct ConcurrencyTests {
    let clock = ManualClock()

    @Test(
        "all-of: steps finishing in reverse order are recorded at their start positions; results come in the order given; replay runs nothing"
    )
    func allOf() async throws {
        let driver = try MemoryDriver()
        let ran = Counter()
        let clock = self.clock
        let body: @Sendable (WorkflowContext) async throws -> [UInt8] = { context in
            let futures = try ["a", "b", "c"].enumerated().map { index, name in
                try context.startRun(name) { _ in
                    // "c" finishes first, "a" last.
                    try await clock.sleep(until: 1_000_000 + Int64(3 - index) * 100)
                    ran.bump(name)
                    return name.uppercased()
                }
            }
            let results = try await context.all(futures)
            let tail = try await context.run("after") { _ in ran.bump("after") }
            return try encoded(results.joined() + "\(tail)")
        }
        let task = launch(driver, clock: clock, body)
        try await eventually("three attempts sleep") { clock.sleepers == 3 }
        clock.advance(by: 300)
        await task.value
        #expect(driver.record.status == .completed)
        #expect(try decoded(String.self, driver.record.output) == "ABC1")
        #expect(driver.record.steps.map(\.name) == ["a", "b", "c", "after"])
        #expect(driver.record.steps.allSatisfy { $0.isResolved })

        let again = try MemoryDriver()
        for step in driver.record.steps { _ = try await again.record([step], now: 0) }
        await launch(again, clock: clock, body).value
        #expect(ran.log == ["a": 1, "b": 1, "c": 1, "after": 1], "replay ran nothing")
        #expect(again.record.output == driver.record.output)
    }

    @Test("first-of: the timer wins, the activity is cancelled and recorded so; replay picks the same winner")
    func firstOfTimer() async throws {
        let driver = try MemoryDriver()
        let started = Counter()
        let cancelled = Counter()
        let clock = self.clock
        let body: @Sendable (WorkflowContext) async throws -> [UInt8] = { context in
            let reply = try context.startRun("ask-supplier", retry: RetryPolicy(maximumAttempts: 1)) { _ in
                started.bump("ask")
                do {
                    try await clock.sleep(until: clock.now() + 60_000)
                } catch {
                    cancelled.bump("ask")
                    throw error
                }
                return "reply"
            }
            let deadline = try context.startTimer(for: .seconds(10))
            let winner = try await context.first(reply, deadline)
            let after = try await context.run("after") { _ in 1 }
            return try encoded("\(winner)/\(after)")
        }
        let task = launch(driver, clock: clock, body)
        try await eventually("the attempt and the timer wait") { clock.sleepers == 2 }
        clock.advance(by: 10_000)
        await task.value
        #expect(try decoded(String.self, driver.record.output) == "1/1")
        // The loser's task is cancelled once the race is journaled and is not awaited: its code sees the
        // cancellation on its own time (CI once read the counter before it had).
        try await eventually("the losing attempt sees its cancellation") { cancelled.count("ask") == 1 }
        let steps = driver.record.steps
        #expect(steps.map(\.name) == ["ask-supplier", "sleep", "first", "after"])
        guard case .failure(let failure)? = steps[0].outcome else {
            Issue.record("the loser is recorded as cancelled: \(steps[0])")
            return
        }
        #expect(failure.code == WorkflowError.Code.cancelled.rawValue)

        // Replay: nothing runs again, the same winner comes back.
        let again = try MemoryDriver()
        for step in steps { _ = try await again.record([step], now: 0) }
        await launch(again, clock: clock, body).value
        #expect(started.count("ask") == 1)
        #expect(again.record.output == driver.record.output)
    }

    @Test("first-of: when the activity wins, the timer is dropped and the activity's result is used")
    func firstOfActivity() async throws {
        let driver = try MemoryDriver()
        await launch(driver, clock: clock) { context in
            let reply = try context.startRun("quick") { _ in "reply" }
            let deadline = try context.startTimer(for: .seconds(10))
            guard try await context.first([reply, deadline]) == 0 else { return try encoded("timeout") }
            return try encoded(try await reply.value())
        }.value
        #expect(try decoded(String.self, driver.record.output) == "reply")
        #expect(driver.record.steps.map(\.name) == ["quick", "sleep", "first"])
        // The loser's task is cancelled, not awaited: its timer goes once that task sees the cancellation.
        try await eventually("the losing timer no longer waits") { clock.sleepers == 0 }
    }

    @Test("a replay that finds a race's winner out of range fails the instance as non-deterministic")
    func firstOfNonDeterminism() async throws {
        let body: @Sendable (WorkflowContext) async throws -> [UInt8] = { context in
            let a = try context.startRun("a") { _ in 1 }
            let b = try context.startRun("b") { _ in 2 }
            _ = try await context.first(a, b)
            return []
        }
        let driver = try MemoryDriver()
        await launch(driver, clock: clock, body).value
        let again = try MemoryDriver()
        for step in driver.record.steps {
            var step = step
            if step.name == "first" { step.outcome = .value(try encoded(5)) }
            _ = try await again.record([step], now: 0)
        }
        await launch(again, clock: clock, body).value
        #expect(again.record.status == .failed)
        #expect(again.record.failure?.message.contains("winner 5") == true)
    }

    @Test(
        "a query is answered from the running code's handler once it caught up with its history; unknown names are refused"
    )
    func query() async throws {
        let driver = try MemoryDriver()
        let executor = WorkflowExecutor(
            driver: driver, history: [], clock: clock, activities: ActivityRegistry(), logger: .init(label: "test"))
        let task = Task {
            await executor.run { context in
                let done = WorkflowVariable(0)
                context.onQuery("progress") { done.value }
                for name in ["a", "b"] {
                    _ = try await context.run(name) { _ in 1 }
                    done.value += 1
                }
                _ = try await context.waitForEvent("go", as: Bool.self)
                return []
            }
        }
        try await eventually("the code waits for its event") {
            driver.record.steps.last.map { $0.kind == .event } ?? false
        }
        let answer = try await executor.query("progress", deadline: clock.now() + 1_000)
        #expect(try JSONMessageCodec().decode(Int.self, from: answer) == 2)
        await #expect(throws: WorkflowError.self) {
            _ = try await executor.query("nope", deadline: clock.now() + 1_000)
        }
        let writes = driver.writes
        _ = try await executor.query("progress", deadline: clock.now() + 1_000)
        #expect(driver.writes == writes, "a query writes nothing")
        try driver.signal("go", true)
        await task.value
        #expect(driver.record.status == .completed)
    }
}
