import PlexCore
import PlexTestKit
import Synchronization
import Testing

@testable import PlexWorkflow

/// The executor over a workflow record in memory, with a clock the tests move: replay, retries, timers,
/// events, non-determinism, compensation and cancellation, without a node.
@Suite("Workflow executor", .timeLimit(.minutes(1)))
struct ExecutorTests {
    let clock = ManualClock()

    @Test("a finished instance's code replays from its history: no activity runs again, same result")
    func replay() async throws {
        let driver = try MemoryDriver()
        let runs = Counter()
        let body: @Sendable (WorkflowContext) async throws -> [UInt8] = { context in
            var total = 0
            for name in ["a", "b", "c"] {
                total += try await context.run(name) { _ in runs.bump(name) * 10 }
            }
            let stamp = try await context.now()
            return try encoded("\(total)@\(stamp.timeIntervalSince1970)")
        }
        await launch(driver, clock: clock, body).value
        #expect(driver.record.status == .completed)
        #expect(runs.log == ["a": 1, "b": 1, "c": 1])
        #expect(driver.record.steps.map(\.name) == ["a", "b", "c", "now"])
        let first = try decoded(String.self, driver.record.output)
        #expect(first.hasPrefix("30@"))

        // A second executor over the same history (as after a restart) returns every step's journaled result.
        clock.advance(by: 5_000)
        let replayed = Counter()
        let again = try MemoryDriver()
        for step in driver.record.steps { _ = try await again.record([step], now: 0) }
        let writesBefore = again.writes
        await launch(again, clock: clock) { context in
            try #require(context.isReplaying)
            let values = [
                try await context.run("a") { _ in replayed.bump("a") },
                try await context.run("b") { _ in replayed.bump("b") },
                try await context.run("c") { _ in replayed.bump("c") },
            ]
            let stamp = try await context.now()
            #expect(!context.isReplaying)
            return try encoded("\(values.reduce(0, +))@\(stamp.timeIntervalSince1970)")
        }.value
        #expect(replayed.log.isEmpty, "no activity ran during replay")
        #expect(again.writes == writesBefore + 1, "replay writes nothing but the ending")
        #expect(try decoded(String.self, again.record.output) == first)
    }

    @Test("failed attempts are retried with exponential backoff; the attempts and the next retry time are journaled")
    func retries() async throws {
        let driver = try MemoryDriver()
        let attempts = Counter()
        let policy = RetryPolicy(initialInterval: .seconds(1), backoffCoefficient: 2, maximumAttempts: 5)
        let start = clock.now()
        let task = launch(driver, clock: clock) { context in
            try encoded(
                try await context.run("flaky", retry: policy) { activity in
                    if attempts.bump("flaky") < 3 { throw ActorFailure(code: "busy", message: "try later") }
                    return activity.attempt
                })
        }
        try await eventually("first attempt failed and was journaled") { driver.record.steps.first?.attempts == 1 }
        var step = try #require(driver.record.steps.first)
        #expect(step.dueAt == start + 1_000)
        #expect(step.lastFailure?.code == "busy")
        try await eventually("it waits on the clock") { clock.sleepers == 1 }
        #expect(attempts.count("flaky") == 1, "no attempt before the backoff ends")
        clock.advance(by: 999)
        #expect(attempts.count("flaky") == 1)
        clock.advance(by: 1)
        try await eventually("second attempt failed") { driver.record.steps.first?.attempts == 2 }
        step = try #require(driver.record.steps.first)
        #expect(step.dueAt == start + 1_000 + 2_000, "the second delay is twice the first")
        try await eventually("it waits again") { clock.sleepers == 1 }
        clock.advance(by: 2_000)
        await task.value
        #expect(driver.record.status == .completed)
        #expect(try decoded(Int.self, driver.record.output) == 3)
        #expect(driver.record.steps.first?.attempts == 3)
    }

    @Test("a backoff survives a restart: the new executor waits for the journaled retry time, not a new one")
    func backoffSurvivesRestart() async throws {
        let driver = try MemoryDriver()
        let attempts = Counter()
        let policy = RetryPolicy(initialInterval: .seconds(10), maximumAttempts: 3)
        let body: @Sendable (WorkflowContext) async throws -> [UInt8] = { context in
            try encoded(
                try await context.run("flaky", retry: policy) { _ in
                    if attempts.bump("flaky") < 2 { throw ActorFailure(code: "busy", message: "try later") }
                    return "done"
                })
        }
        let first = launch(driver, clock: clock, body)
        try await eventually("first attempt failed") { driver.record.steps.first?.attempts == 1 }
        let due = try #require(driver.record.steps.first?.dueAt)
        first.cancel()  // the node died during the backoff
        await first.value
        clock.advance(by: 4_000)
        let second = launch(driver, clock: clock, body)
        try await eventually("the new executor waits") { clock.sleepers == 1 }
        clock.advance(by: 5_999)  // one millisecond before the journaled time
        #expect(attempts.count("flaky") == 1)
        #expect(clock.now() == due - 1)
        clock.advance(by: 1)
        await second.value
        #expect(attempts.count("flaky") == 2)
        #expect(driver.record.status == .completed)
        #expect(driver.record.steps.first?.attempts == 2, "the attempt count went on from the journal")
    }

    @Test("a non-retryable error, or the last attempt, fails the activity; the code sees activityFailed")
    func givesUp() async throws {
        let driver = try MemoryDriver()
        let attempts = Counter()
        await launch(driver, clock: clock) { context in
            do {
                _ = try await context.run("refused", retry: RetryPolicy(nonRetryableErrors: ["card-declined"])) {
                    _ -> Int in
                    attempts.bump("refused")
                    throw ActorFailure(code: "card-declined", message: "declined")
                }
                Issue.record("a non-retryable error must fail the activity")
            } catch let error as WorkflowError {
                #expect(error.code == .activityFailed)
                #expect(error.failure?.code == "card-declined")
            }
            do {
                _ = try await context.run("thrown", retry: .default) { _ -> Int in
                    attempts.bump("thrown")
                    throw WorkflowError.nonRetryable("bad input")
                }
            } catch let error as WorkflowError { #expect(error.code == .activityFailed) }
            do {
                _ = try await context.run("twice", retry: RetryPolicy(initialInterval: .zero, maximumAttempts: 2)) {
                    _ -> Int in
                    attempts.bump("twice")
                    throw ActorFailure(code: "busy", message: "busy")
                }
            } catch let error as WorkflowError { #expect(error.code == .activityFailed) }
            return try encoded("ok")
        }.value
        #expect(attempts.log == ["refused": 1, "thrown": 1, "twice": 2])
        #expect(driver.record.steps.map(\.attempts) == [1, 1, 2])
        #expect(driver.record.status == .completed)
    }

    @Test("an attempt that outlasts its start-to-close timeout fails and is retried")
    func attemptTimeout() async throws {
        let driver = try MemoryDriver()
        let attempts = Counter()
        let policy = RetryPolicy(initialInterval: .seconds(1), maximumAttempts: 2, startToCloseTimeout: .seconds(5))
        let task = launch(driver, clock: clock) { context in
            try encoded(
                try await context.run("slow", retry: policy) { _ in
                    if attempts.bump("slow") == 1 { try await Task.sleep(for: .seconds(3600)) }
                    return 7
                })
        }
        try await eventually("the attempt runs and its timeout waits") { clock.sleepers == 1 }
        clock.advance(by: 5_000)
        try await eventually("the attempt failed by timeout") { driver.record.steps.first?.attempts == 1 }
        #expect(driver.record.steps.first?.lastFailure?.code == WorkflowError.Code.timedOut.rawValue)
        try await eventually("backoff") { clock.sleepers == 1 }
        clock.advance(by: 1_000)
        await task.value
        #expect(try decoded(Int.self, driver.record.output) == 7)
    }

    @Test("a durable timer fires at its journaled time, also after a restart")
    func timer() async throws {
        let driver = try MemoryDriver()
        let after = Counter()
        let body: @Sendable (WorkflowContext) async throws -> [UInt8] = { context in
            try await context.sleep(for: .seconds(60))
            after.bump("after")
            return []
        }
        let first = launch(driver, clock: clock, body)
        try await eventually("the timer is journaled") { driver.record.steps.count == 1 }
        let due = try #require(driver.record.steps.first?.dueAt)
        #expect(due == clock.now() + 60_000)
        first.cancel()
        await first.value
        clock.advance(by: 30_000)
        let second = launch(driver, clock: clock, body)
        try await eventually("it waits") { clock.sleepers == 1 }
        clock.advance(by: 29_999)
        #expect(after.count("after") == 0)
        clock.advance(by: 1)
        await second.value
        #expect(after.count("after") == 1)
        #expect(driver.record.steps.first?.completedAt == due)
        #expect(driver.record.status == .completed)
    }

    @Test("an event waited for arrives; one sent earlier waits in the inbox; a timeout returns nil")
    func events() async throws {
        let driver = try MemoryDriver()
        try driver.signal("early", "first")
        let task = launch(driver, clock: clock) { context in
            let early = try await context.waitForEvent("early", as: String.self)
            let approval = try await context.waitForEvent("approval", as: Bool.self)
            let late = try await context.waitForEvent("never", as: Int.self, timeout: .seconds(30))
            return try encoded(
                "\(early ?? "-") \(approval.map(String.init) ?? "-") \(late.map(String.init) ?? "timed out")")
        }
        try await eventually("it waits for approval") { driver.record.steps.count == 2 }
        #expect(driver.record.steps[0].outcome == .value(try JSONMessageCodec().encode("first")))
        #expect(driver.record.steps[1].outcome == nil)
        // Wake-ups that bring no approval (another event, a reminder) journal nothing.
        let writes = driver.writes
        let reads = driver.inboxReads
        try driver.signal("other", 1)
        try await eventually("the code looked and found nothing") { driver.inboxReads > reads }
        #expect(driver.writes == writes, "a wait that finds no event writes nothing")
        try driver.signal("approval", true)
        try await eventually("it waits for the last event, on the clock") {
            driver.record.steps.count == 3 && clock.sleepers == 1
        }
        clock.advance(by: 30_000)
        await task.value
        #expect(try decoded(String.self, driver.record.output) == "first true timed out")
        #expect(driver.record.steps[2].outcome == .timedOut)
        #expect(driver.record.inbox.isEmpty)
    }

    @Test("code that asks for another step than the history holds fails the instance, naming the position")
    func nonDeterminism() async throws {
        let driver = try MemoryDriver()
        await launch(driver, clock: clock) { context in
            _ = try await context.run("reserve") { _ in 1 }
            _ = try await context.run("charge") { _ in 2 }
            return []
        }.value
        let changed = try MemoryDriver()
        for step in driver.record.steps { _ = try await changed.record([step], now: 0) }
        let ran = Counter()
        await launch(changed, clock: clock) { context in
            _ = try await context.run("reserve") { _ in 1 }
            // The code now sleeps where it used to charge; catching the error does not hide it.
            do { try await context.sleep(for: .seconds(1)) } catch {}
            _ = try await context.run("ship") { _ in ran.bump("ship") }
            return []
        }.value
        #expect(changed.record.status == .failed)
        let message = try #require(changed.record.failure?.message)
        #expect(message.contains("step 1"))
        #expect(message.contains("activity 'charge'"))
        #expect(message.contains("timer 'sleep'"))
        #expect(ran.count("ship") == 0)
    }

    @Test("when the code fails, compensations run last first; a cancellation request runs them too")
    func compensation() async throws {
        let order = Mutex<[String]>([])
        let body: @Sendable (WorkflowContext) async throws -> [UInt8] = { context in
            for name in ["reserve", "charge"] {
                _ = try await context.run(name) { _ in 1 }
                context.addCompensation {
                    _ = try await context.run("undo-\(name)") { _ in
                        order.withLock { $0.append("undo-\(name)") }; return 0
                    }
                }
            }
            try await context.sleep(for: .seconds(10))
            _ = try await context.run("ship", retry: .never) { _ -> Int in
                throw ActorFailure(code: "no", message: "no truck")
            }
            return []
        }
        let failing = try MemoryDriver()
        let task = launch(failing, clock: clock, body)
        try await eventually("sleeping") { clock.sleepers == 1 }
        clock.advance(by: 10_000)
        await task.value
        #expect(failing.record.status == .failed)
        #expect(order.withLock { $0 } == ["undo-charge", "undo-reserve"])
        #expect(
            failing.record.steps.map(\.name) == ["reserve", "charge", "sleep", "ship", "undo-charge", "undo-reserve"])

        order.withLock { $0 = [] }
        let cancelled = try MemoryDriver(id: "wf-2")
        let second = launch(cancelled, clock: clock, body)
        try await eventually("sleeping") { clock.sleepers == 1 }
        cancelled.requestCancel()
        await second.value
        #expect(cancelled.record.status == .cancelled)
        #expect(order.withLock { $0 } == ["undo-charge", "undo-reserve"])

        // Cancelled before its code starts again (after an unload or a restart): the code replays its history
        // first, registering the compensations it did, and only then sees the request.
        order.withLock { $0 = [] }
        let replayed = try MemoryDriver(id: "wf-3")
        for step in failing.record.steps.prefix(3) {
            var pending = step
            if step.kind == .timer { pending.outcome = nil; pending.completedAt = nil }
            _ = try await replayed.record([pending], now: 0)
        }
        replayed.requestCancel()
        await launch(replayed, clock: clock, body).value
        #expect(replayed.record.status == .cancelled)
        #expect(order.withLock { $0 } == ["undo-charge", "undo-reserve"], "the replayed steps were compensated")
        #expect(replayed.record.steps.map(\.name) == ["reserve", "charge", "sleep", "undo-charge", "undo-reserve"])
    }

    @Test("a failed write stops the executor: nothing more runs or is recorded, and the instance stays running")
    func failedWriteStops() async throws {
        let driver = try MemoryDriver()
        let ran = Counter()
        driver.failWrites(true)
        await launch(driver, clock: clock) { context in
            do { _ = try await context.run("a") { _ in ran.bump("a") } } catch {}
            _ = try await context.run("b") { _ in ran.bump("b") }
            return []
        }.value
        #expect(ran.log == ["a": 1])
        #expect(driver.record.status == .running)
        #expect(driver.record.steps.isEmpty)
    }

    @Test("fast completions are journaled together with what follows them; none waits longer than the window")
    func batching() async throws {
        let fast = try MemoryDriver()
        await launch(fast, clock: clock, batchWindow: 100) { context in
            for name in ["a", "b", "c"] { _ = try await context.run(name) { _ in 1 } }
            _ = try await context.uuid()
            return []
        }.value
        #expect(fast.writes == 1, "three activities, a UUID and the ending in one write")
        #expect(fast.record.steps.map(\.name) == ["a", "b", "c", "uuid"])
        #expect(fast.record.status == .completed)

        // A completion waits for the window, not for the slow attempt after it.
        let slow = try MemoryDriver(id: "wf-slow")
        // A clock of its own: the first run's flush timer may still sleep on `self.clock` (it started while
        // "a" was held back and read its watch before the attempt unwatched it), which would make three
        // sleepers here instead of two.
        let clock = ManualClock()
        let task = launch(slow, clock: clock, batchWindow: 100) { context in
            _ = try await context.run("quick") { _ in 1 }
            _ = try await context.run("slow") { _ in
                try await clock.sleep(until: clock.now() + 10_000)
                return 2
            }
            return []
        }
        try await eventually("the slow attempt and the window wait on the clock") { clock.sleepers == 2 }
        #expect(slow.writes == 0)
        clock.advance(by: 100)
        try await eventually("the quick completion is journaled within the window, with the running step after it") {
            let steps = slow.record.steps
            return steps.map(\.name) == ["quick", "slow"] && steps[0].isResolved && !steps[1].isResolved
        }
        clock.advance(by: 10_000)
        await task.value
        #expect(slow.record.steps.map(\.name) == ["quick", "slow"])
        #expect(slow.writes == 2)
    }

    @Test("version: an instance started before a change keeps the old branch, a new one takes the new branch")
    func versioning() async throws {
        // Code before the change: reserve, then ship.
        let old = try MemoryDriver(id: "old")
        let first = launch(old, clock: clock) { context in
            _ = try await context.run("reserve") { _ in 1 }
            _ = try await context.waitForEvent("go", as: Bool.self)
            _ = try await context.run("ship") { _ in 2 }
            return []
        }
        try await eventually("the old instance waits") { old.record.steps.count == 2 }
        first.cancel()
        await first.value
        // The new code inserts a change after reserve; the old instance replays reserve and its wait, then ships.
        let changed: @Sendable (WorkflowContext) async throws -> [UInt8] = { context in
            _ = try await context.run("reserve") { _ in 1 }
            let version = try await context.version("express", supported: 0...1)
            if version == 1 { _ = try await context.run("express") { _ in 3 } }
            _ = try await context.waitForEvent("go", as: Bool.self)
            _ = try await context.run("ship") { _ in 2 }
            return try encoded(version)
        }
        try old.signal("go", true)
        await launch(old, clock: clock, changed).value
        #expect(old.record.status == .completed)
        #expect(try decoded(Int.self, old.record.output) == 0)
        #expect(old.record.steps.map(\.name) == ["reserve", "go", "ship"])

        let new = try MemoryDriver(id: "new")
        try new.signal("go", true)
        await launch(new, clock: clock, changed).value
        #expect(try decoded(Int.self, new.record.output) == 1)
        #expect(new.record.steps.map(\.name) == ["reserve", "version:express", "express", "go", "ship"])

        // Replaying the new instance returns the recorded version; dropping support for it fails the instance.
        let replay = try MemoryDriver(id: "replay")
        for step in new.record.steps.prefix(3) { _ = try await replay.record([step], now: 0) }
        await launch(replay, clock: clock) { context in
            _ = try await context.run("reserve") { _ in 1 }
            _ = try await context.version("express", supported: 2...3)
            return []
        }.value
        #expect(replay.record.status == .failed)
        #expect(replay.record.failure?.message.contains("version 1") == true)
    }
}
