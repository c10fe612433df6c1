internal import Foundation
internal import PlexExamples
internal import PlexSpaces
internal import Synchronization

/// What the end of a chaos run found about the workflows it started.
public struct WorkflowVerdict: Sendable, Hashable {
    /// Instances whose start was acknowledged.
    public var started = 0
    /// Acknowledged instances the cluster no longer knew at the end (never started, as far as their owner
    /// could tell), sorted.
    public var lost: [String] = []
    /// Instances that did not complete with the right result by the end, with what they came to, sorted.
    public var unfinished: [String] = []
    /// Completed instances whose activities left no trace of a step (a step that never ran), sorted.
    public var missingSteps: [String] = []

    public init() {}

    /// Whether every acknowledged workflow completed once, with every step run.
    public var passed: Bool { lost.isEmpty && unfinished.isEmpty && missingSteps.isEmpty }
}

/// The workflows of a chaos run: `steps` instances (the example that appends a line per activity attempt to
/// a file, with a timer between steps and a failing first attempt) started through every node while the
/// faults run, and completed and checked at the end.
final class WorkflowLoad: Sendable {
    static let steps = 3
    let file: String
    private let state = Mutex<(acknowledged: Set<String>, attempted: Set<String>)>(([], []))

    init(directory: String) {
        file = "\(directory)/workflow-lines.txt"
    }

    var input: StepsWorkflow.Input {
        .init(file: file, steps: Self.steps, pauseMilliseconds: 300, failFirstAttempts: 1)
    }

    /// Starts an instance every 250 ms through the callers in turn until `stopping`.
    func run(callers: [NodeCaller], stopping: @escaping @Sendable () -> Bool) async {
        var next = 0
        while !stopping() {
            let id = "wf-\(next)"
            state.withLock { _ = $0.attempted.insert(id) }
            if let client = await callers[next % callers.count].connected() {
                do {
                    _ = try await WorkflowClient(client: client).start(
                        StepsWorkflow.self, id: id, input: input, timeout: .seconds(2))
                    state.withLock { _ = $0.acknowledged.insert(id) }
                } catch {}
            }
            next += 1
            try? await Task.sleep(for: .milliseconds(250))
        }
    }

    /// Completes every instance (starting again, with the same id, those whose start was never acknowledged),
    /// waits for each through the nodes in turn until `deadline`, and judges.
    func settle(callers: [NodeCaller], until deadline: ContinuousClock.Instant, log: ChaosLog) async
        -> WorkflowVerdict
    {
        let (acknowledged, attempted) = state.withLock { ($0.acknowledged, $0.attempted) }
        log("completing \(attempted.count) workflows (\(acknowledged.count) acknowledged)")
        var verdict = WorkflowVerdict()
        verdict.started = acknowledged.count
        let queue = WorkQueue(attempted.sorted())
        let found = await withTaskGroup(of: [(String, Completion)].self) { group in
            for worker in 0..<16 {
                group.addTask {
                    var found: [(String, Completion)] = []
                    while let id = queue.next() {
                        let completion = await self.complete(
                            id, wasAcknowledged: acknowledged.contains(id), callers: callers, first: worker,
                            until: deadline)
                        found.append((id, completion))
                    }
                    return found
                }
            }
            var all: [(String, Completion)] = []
            for await found in group { all += found }
            return all
        }
        var completed: [String] = []
        for (id, completion) in found {
            switch completion {
            case .completed: completed.append(id)
            case .lost: verdict.lost.append(id)
            case .unfinished(let why): verdict.unfinished.append("\(id): \(why)")
            }
        }
        let lines = (try? String(contentsOfFile: file, encoding: .utf8)) ?? ""
        var positions: [String: Set<String>] = [:]
        for line in lines.split(separator: "\n") {
            let fields = line.split(separator: " ")
            if fields.count >= 2 { positions[String(fields[0]), default: []].insert(String(fields[1])) }
        }
        verdict.missingSteps = completed.filter { (positions[$0]?.count ?? 0) < Self.steps }.sorted()
        verdict.lost.sort()
        verdict.unfinished.sort()
        for id in verdict.lost { log("workflow \(id): its start was acknowledged and the cluster no longer knows it") }
        for entry in verdict.unfinished { log("workflow \(entry)") }
        for id in verdict.missingSteps { log("workflow \(id): completed without a trace of every step") }
        return verdict
    }

    private enum Completion: Sendable {
        case completed
        case lost
        case unfinished(String)
    }

    private func complete(
        _ id: String, wasAcknowledged: Bool, callers: [NodeCaller], first: Int, until deadline: ContinuousClock.Instant
    ) async -> Completion {
        var attempt = first
        var last = "not reached"
        while ContinuousClock.now < deadline {
            let caller = callers[attempt % callers.count]
            attempt += 1
            guard let client = await caller.connected() else {
                try? await Task.sleep(for: .milliseconds(250))
                continue
            }
            let workflows = WorkflowClient(client: client)
            do {
                let description = try await workflows.describe(id: id, timeout: .seconds(3))
                if description.status == .pending {
                    if wasAcknowledged { return .lost }
                    _ = try await workflows.start(StepsWorkflow.self, id: id, input: input, timeout: .seconds(3))
                }
                let done = try await workflows.awaitCompletion(id: id, timeout: .seconds(10))
                guard done.status == .completed else { return .unfinished(done.status.rawValue) }
                let result = try BinaryMessageCodec().decode(Int.self, from: done.output ?? [])
                return result == Self.steps ? .completed : .unfinished("result \(result)")
            } catch {
                last = "\(error)"
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        return .unfinished("not completed by the deadline (last: \(last))")
    }
}
