import Foundation
import PlexCore
import Testing

@testable import PlexWorkflow

/// `WorkflowStep`'s written-out encoding against the synthesized one: a mirror with the same fields in the same
/// order, and synthesized `Codable`.
private struct SynthesizedStep: Codable {
    enum Outcome: Codable {
        case value([UInt8])
        case failure(EffectLog.Failure)
        case timedOut
    }

    var position: Int
    var kind: WorkflowStep.Kind
    var name: String
    var outcome: Outcome?
    var attempts: Int
    var startedAt: Int64
    var dueAt: Int64?
    var lastFailure: EffectLog.Failure?
    var completedAt: Int64?
    var target: String?

    init(_ step: WorkflowStep) {
        position = step.position
        kind = step.kind
        name = step.name
        outcome = step.outcome.map {
            switch $0 {
            case .value(let bytes): .value(bytes)
            case .failure(let failure): .failure(failure)
            case .timedOut: .timedOut
            }
        }
        attempts = step.attempts
        startedAt = step.startedAt
        dueAt = step.dueAt
        lastFailure = step.lastFailure
        completedAt = step.completedAt
        target = step.target
    }
}

@Suite("Workflow step encoding")
struct StepCodingTests {
    /// Steps with every field set and unset, every outcome, and long values (lengths of two varint bytes).
    static func steps() -> [WorkflowStep] {
        var failure = EffectLog.Failure(ActorFailure(code: "declined", message: "card declined"))
        var callFailure = EffectLog.Failure(CallError(.timeout, "slow"))
        callFailure.code = nil
        failure.message += String(repeating: "é", count: 100)
        let outcomes: [WorkflowStep.Outcome?] = [
            nil, .value([]), .value([1, 2, 3]), .value(Array(repeating: 7, count: 300)), .failure(failure),
            .failure(callFailure), .timedOut,
        ]
        var steps: [WorkflowStep] = []
        for (index, outcome) in outcomes.enumerated() {
            for kind in [WorkflowStep.Kind.activity, .timer, .event, .value, .child] {
                let full = index % 2 == 0
                steps.append(
                    WorkflowStep(
                        position: index * 1_000 - 3, kind: kind, name: full ? "charge-card" : "", outcome: outcome,
                        attempts: index, startedAt: 1_733_300_000_000 + Int64(index), dueAt: full ? -5 : nil,
                        lastFailure: full ? failure : nil, completedAt: full ? Int64.max : nil,
                        target: full ? String(repeating: "child-", count: 30) : nil))
            }
        }
        return steps
    }

    @Test("the binary codec writes the synthesized bytes, alone, in arrays and nested, and reads them back")
    func binary() throws {
        let codec = BinaryMessageCodec()
        let steps = Self.steps()
        for step in steps {
            let bytes = try codec.encode(step)
            #expect(bytes == (try codec.encode(SynthesizedStep(step))))
            #expect(try codec.decode(WorkflowStep.self, from: bytes) == step)
        }
        #expect(try codec.encode(steps) == (try codec.encode(steps.map(SynthesizedStep.init))))
        let request = WorkflowInstance.Request.finish(.completed([9]), steps: steps, now: 42)
        let decoded = try codec.decode(WorkflowInstance.Request.self, from: try codec.encode(request))
        guard case .finish(_, let back, let now) = decoded else {
            Issue.record("decoded \(decoded)")
            return
        }
        #expect(back == steps && now == 42)
    }

    @Test("JSON (the CLI's and the gateway's history) is the synthesized form too")
    func json() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        for step in Self.steps() {
            let data = try encoder.encode(step)
            #expect(data == (try encoder.encode(SynthesizedStep(step))))
            #expect(try JSONDecoder().decode(WorkflowStep.self, from: data) == step)
        }
    }
}
