import PlexCore
import PlexSpaces
import PlexTestKit
import Testing

@testable import PlexWorkflow

/// Sleeps, then waits for an event, then runs one activity.
struct SleepThenWait: Workflow {
    static let typeName = "sleep-then-wait"
    func run(_ milliseconds: Int, context: WorkflowContext) async throws -> String {
        try await context.sleep(for: .milliseconds(milliseconds))
        let word = try await context.waitForEvent("word", as: String.self) ?? "none"
        return try await context.run("echo") { _ in "heard \(word)" }
    }
}

/// Sleeps for `milliseconds`.
struct SleepsFor: Workflow {
    static let typeName = "sleeps-for"
    func run(_ milliseconds: Int, context: WorkflowContext) async throws -> Int {
        try await context.sleep(for: .milliseconds(milliseconds))
        return milliseconds
    }
}

/// Sleeps past the unload time, then races a 20 s child against a timer of `input` ms.
struct SleepThenRace: Workflow {
    static let typeName = "sleep-then-race"
    func run(_ input: Int, context: WorkflowContext) async throws -> Int {
        try await context.sleep(for: .milliseconds(300))
        let child = try await context.startChild(SleepsFor.self, input: 20_000)
        let timer = try context.startTimer(for: .milliseconds(input))
        return try await context.first(child, timer)
    }
}

/// Runs `input` steps of 150 ms each.
struct SlowSteps: Workflow {
    static let typeName = "slow-steps"
    func run(_ input: Int, context: WorkflowContext) async throws -> Int {
        for step in 0..<input {
            _ = try await context.run("step") { _ in
                try await Task.sleep(for: .milliseconds(150))
                return step
            }
        }
        return input
    }
}

@Suite("Waiting instances unload", .timeLimit(.minutes(2)))
struct UnloadTests {
    /// One node hosting `engine`'s workflows, whose idle timeout (60 s) never ends an activation during a test:
    /// only an unload does.
    func withNode(hosting engine: WorkflowEngine, _ body: @escaping @Sendable (PlexNode) async throws -> Void)
        async throws
    {
        try await withTestCluster(
            nodes: 1, transport: .inMemory,
            setup: { $0.activation.idleTimeout = .seconds(60) },
            register: { engine.install(on: $0) }
        ) { cluster in try await body(cluster.node(0)) }
    }

    @Test("an instance waiting on a timer or an event unloads; its reminder or the event brings it back")
    func unloads() async throws {
        let engine = WorkflowEngine(options: .init(unloadAfter: .milliseconds(100)))
        engine.register(SleepThenWait.self)
        try await withNode(hosting: engine) { node in
            let client = WorkflowClient(node: node)
            let id = ActorID(typeName: WorkflowInstance.typeName, key: "u1")
            let handle = try await client.start(SleepThenWait.self, id: "u1", input: 1_500)
            try await eventually("the timer-blocked instance unloads (long before the 60 s idle timeout)") {
                !node.isActive(id)
            }
            try await eventually("its reminder brings it back at the timer, and it waits for the event, unloaded") {
                let history = try await WorkflowInspector.record(of: "u1", in: node.journal).record.steps
                return history.count == 2 && history[0].isResolved && !node.isActive(id)
            }
            let timer = try await WorkflowInspector.record(of: "u1", in: node.journal).record.steps[0]
            #expect(try #require(timer.completedAt) >= (timer.dueAt ?? .max), "the timer fired at its time")
            try await handle.signal("word", "hello")
            #expect(try await handle.result(timeout: .seconds(10)) == "heard hello")
        }
    }

    @Test("a timer still fires when the instance's unload never happens (reads keep it active)")
    func unloadThatNeverHappens() async throws {
        // While an unload is pending the code waits without a timer of its own; the wake-up reminder is what
        // ends the wait if the activation stays.
        let engine = WorkflowEngine(options: .init(unloadAfter: .milliseconds(100)))
        engine.register(SleepThenWait.self)
        try await withNode(hosting: engine) { node in
            let client = WorkflowClient(node: node)
            let id = ActorID(typeName: WorkflowInstance.typeName, key: "kept")
            let handle = try await client.start(SleepThenWait.self, id: "kept", input: 1_500)
            // A read every few milliseconds marks the activation used, so the idle sweep never ends it.
            let reader = Task {
                while !Task.isCancelled {
                    _ = try? await client.describe(id: "kept")
                    try? await Task.sleep(for: .milliseconds(5))
                }
            }
            defer { reader.cancel() }
            try await eventually("the timer fires although the instance stayed active", within: .seconds(20)) {
                let history = try await WorkflowInspector.record(of: "kept", in: node.journal).record.steps
                return history.first?.isResolved == true
            }
            #expect(node.isActive(id), "the reads kept the instance active")
            try await handle.signal("word", "again")
            #expect(try await handle.result(timeout: .seconds(10)) == "heard again")
        }
    }

    @Test("after an unload that did not happen, a timer raced against a child still fires at its time")
    func unloadCalledOff() async throws {
        // The wake-up at the first timer keeps the activation (its message marks it used), so the unload asked
        // for at the first sleep never happens; later waits must set their timers again. (Before, the raced
        // timer waited for the reminder's plan while the child ran: resumeInterval late.)
        let engine = WorkflowEngine(options: .init(unloadAfter: .milliseconds(100)))
        engine.register(SleepThenRace.self)
        engine.register(SleepsFor.self)
        try await withNode(hosting: engine) { node in
            let client = WorkflowClient(node: node)
            let handle = try await client.start(SleepThenRace.self, id: "race", input: 1_000)
            // Reads every few milliseconds use the activation, so each unload asked for is called off (the
            // retirement ends only activations nothing used since they asked).
            let reader = Task {
                while !Task.isCancelled {
                    _ = try? await client.describe(id: "race")
                    try? await Task.sleep(for: .milliseconds(5))
                }
            }
            defer { reader.cancel() }
            #expect(try await handle.result(timeout: .seconds(30)) == 1, "the timer won")
            let steps = try await WorkflowInspector.record(of: "race", in: node.journal).record.steps
            let timer = try #require(steps.first { $0.kind == .timer && $0.position > 0 })
            let late = try #require(timer.completedAt) - (timer.dueAt ?? 0)
            #expect(late < 1_000, "the raced timer fired \(late) ms late")
        }
    }

    @Test("a journal written with one resume interval replays under another (the wake-up plan is not history)")
    func replayUnderOtherSettings() async throws {
        // Written with a 100 ms resume interval, so each slow step's record re-arms the wake-up; WorkflowInspector
        // replays with the default 5 s, as a node restarted with other settings would, and its plan keeps the
        // first one. (Before, the recorded reminders it did not ask for were non-determinism.)
        let engine = WorkflowEngine(options: .init(resumeInterval: .milliseconds(100), unloadAfter: nil))
        engine.register(SlowSteps.self)
        try await withNode(hosting: engine) { node in
            let handle = try await WorkflowClient(node: node).start(SlowSteps.self, id: "settings", input: 4)
            #expect(try await handle.result(timeout: .seconds(30)) == 4)
            let replayed = try await WorkflowInspector.record(of: "settings", in: node.journal)
            #expect(replayed.record.status == .completed)
        }
    }
}
