public import PlexCore

/// A workflow instance's durable state, and every change to it as a pure function: the state machine the
/// instance's actor journals (``WorkflowInstance``), tested without a node.
///
/// Only the instance's executor adds or updates steps (``record(_:)``), in the order its code asks for them;
/// events arrive in an inbox (``signal(_:payload:now:)``) and the executor takes them into a step
/// (``takeEvent(position:name:deadlineReached:now:)``), so a wait and its timeout resolve once, whichever
/// comes first. Every change is a function of the state and the message alone, so replaying the journaled
/// messages rebuilds the same state.
public struct WorkflowRecord: Sendable, Hashable, Codable {
    /// An event delivered and not yet taken by a wait.
    public struct InboxEvent: Sendable, Hashable, Codable {
        /// The event's name.
        public var name: String
        /// Its payload, encoded with the binary codec.
        public var payload: [UInt8]
    }

    /// The workflow type's registered name; empty until the instance is started.
    public var type = ""
    /// The encoded input.
    public var input: [UInt8] = []
    /// Where the instance is in its life.
    public var status = WorkflowStatus.pending
    /// The steps so far.
    public var steps: [WorkflowStep] = []
    /// Events delivered and not taken yet, oldest first.
    public var inbox: [InboxEvent] = []
    /// Whether cancellation was requested (the code sees it at its next step, and compensates).
    public var cancelRequested = false
    /// The encoded result, once completed.
    public var output: [UInt8]?
    /// Why it failed, was cancelled or terminated.
    public var failure: EffectLog.Failure?
    /// When it was started and finished (milliseconds since 1970).
    public var startedAt: Int64 = 0
    public var closedAt: Int64?
    /// When the instance's wake-up reminder is due (``wakePlan(now:resumeAfter:)``); `nil` when none is set.
    public var wakeDue: Int64?
    /// The instance that started this one as its child (told when this one closes).
    public var parent: String?
    /// How many runs came before this one under this id: each continue-as-new
    /// (``WorkflowContext/continueAsNew(with:)``) and each purge followed by a new start. Its history holds the
    /// steps of the current run only; the run number is part of its steps' idempotency keys.
    public var continuedAsNew = 0

    /// Creates the state of an instance that was never started.
    public init() {}

    /// What starting an instance did.
    public enum StartOutcome: Sendable, Hashable {
        /// It started now.
        case started
        /// It had been started before with the same type (starting is idempotent by instance id).
        case existing
    }

    /// Starts the instance, or finds it started.
    /// - Throws: ``WorkflowError`` `typeMismatch` when the id is taken by another workflow type.
    public mutating func start(type: String, input: [UInt8], now: Int64, parent: String? = nil)
        throws(WorkflowError) -> StartOutcome
    {
        guard status == .pending else {
            guard self.type == type else {
                throw WorkflowError(.typeMismatch, "the instance runs workflow type '\(self.type)', not '\(type)'")
            }
            return .existing
        }
        self.type = type
        self.input = input
        self.parent = parent
        status = .running
        startedAt = now
        return .started
    }

    /// Adds the next step or updates a pending one; returns the step as the history now holds it (a step
    /// already resolved stays as it was: a stale executor's late write changes nothing).
    /// - Throws: ``WorkflowError`` `nonDeterminism` when `step` is another step than the one at its position,
    ///   `invalidArgument` when it skips a position.
    public mutating func record(_ step: WorkflowStep) throws(WorkflowError) -> WorkflowStep {
        guard status == .running else { return step }
        if step.position == steps.count {
            steps.append(step)
            return step
        }
        guard steps.indices.contains(step.position) else {
            throw WorkflowError(
                .invalidArgument, "step \(step.position) recorded after \(steps.count) steps: a position was skipped")
        }
        let existing = steps[step.position]
        guard existing.kind == step.kind, existing.name == step.name else {
            throw WorkflowError(
                .nonDeterminism,
                "step \(step.position): the history holds \(existing.label), the code asked for \(step.label)")
        }
        guard existing.isSuperseded(by: step) else { return existing }
        steps[step.position] = step
        return step
    }

    /// Delivers an event (kept in the inbox until a wait takes it).
    /// - Throws: ``WorkflowError`` `notFound` before the instance starts, or the status after it finished.
    public mutating func signal(_ name: String, payload: [UInt8]) throws(WorkflowError) {
        switch status {
        case .pending: throw WorkflowError(.notFound, "no workflow instance has been started with this id")
        case .running: inbox.append(InboxEvent(name: name, payload: payload))
        default: throw WorkflowError(.invalidArgument, "the instance has finished (\(status.rawValue))")
        }
    }

    /// Resolves event wait `position` with the oldest event named `name`, or as timed out if
    /// `deadlineReached` and none is there; returns the step if it is resolved, `nil` if it still waits.
    public mutating func takeEvent(position: Int, name: String, deadlineReached: Bool, now: Int64)
        throws(WorkflowError) -> WorkflowStep?
    {
        guard steps.indices.contains(position) else {
            throw WorkflowError(.invalidArgument, "no step \(position) waits for an event")
        }
        var step = steps[position]
        guard step.kind == .event, step.name == name else {
            throw WorkflowError(
                .nonDeterminism, "step \(position): the history holds \(step.label), the code waits for event '\(name)'"
            )
        }
        if step.isResolved { return step }
        guard status == .running else { return nil }
        if let index = inbox.firstIndex(where: { $0.name == name }) {
            step.outcome = .value(inbox.remove(at: index).payload)
        } else if deadlineReached {
            step.outcome = .timedOut
        } else {
            return nil
        }
        step.completedAt = now
        steps[position] = step
        return step
    }

    /// How an instance ended.
    public enum Ending: Sendable, Hashable, Codable {
        /// Its code returned this (encoded) result.
        case completed([UInt8])
        /// Its code threw.
        case failed(EffectLog.Failure)
        /// It stopped after a cancellation request (its compensation ran).
        case cancelled
        /// It continues as a new run with this (encoded) input: the history starts empty, events waiting in
        /// the inbox stay.
        case continuedAsNew([UInt8])
    }

    /// Records how the instance ended (once; later endings are ignored), or starts its next run.
    public mutating func finish(_ ending: Ending, now: Int64) {
        guard status == .running else { return }
        switch ending {
        case .continuedAsNew(let input):
            self.input = input
            steps = []
            continuedAsNew += 1
            return
        case .completed(let output):
            status = .completed
            self.output = output
        case .failed(let failure):
            status = .failed
            self.failure = failure
        case .cancelled:
            status = .cancelled
            failure = EffectLog.Failure(WorkflowError(.cancelled, "the instance was cancelled"))
        }
        closedAt = now
        inbox = []
    }

    /// Asks a running instance to cancel; returns whether it is running (and so will see the request).
    public mutating func requestCancel() -> Bool {
        guard status == .running else { return false }
        cancelRequested = true
        return true
    }

    /// Stops a running instance at once; returns whether it was running.
    public mutating func terminate(reason: String, now: Int64) -> Bool {
        guard status == .running else { return false }
        status = .terminated
        failure = EffectLog.Failure(WorkflowError(.terminated, reason))
        closedAt = now
        inbox = []
        return true
    }

    /// What the instance's wake-up reminder should be after a change.
    public enum WakeAction: Sendable, Hashable {
        /// Leave it as it is.
        case keep
        /// Set it to fire at this time.
        case arm(Int64)
        /// Remove it.
        case cancel
    }

    /// Decides the wake-up reminder, which brings the instance back after a crash, a restart or a handoff,
    /// and wakes a deactivated one for its timers: none once it finished; while a step runs (an activity
    /// attempt, a child workflow) or the code is between steps, every `resumeAfter` milliseconds (a watchdog
    /// that costs nothing while it is not yet due), or sooner at a pending timer, retry or deadline; otherwise at the earliest due time of its pending timers,
    /// retries and event deadlines; and none while it only waits for events without a deadline (an event wakes
    /// it). Records the decision in ``wakeDue``.
    public mutating func wakePlan(now: Int64, resumeAfter: Int64) -> WakeAction {
        let wanted: Int64?
        var earliest: Int64?
        var busy = steps.last?.isResolved ?? true
        for step in steps where !step.isResolved {
            if let due = step.dueAt {
                if due <= now { busy = true }
                earliest = min(earliest ?? due, due)
            } else if step.kind != .event {
                busy = true
            }
        }
        if status != .running {
            wanted = nil
        } else if !busy {
            wanted = earliest
        } else {
            // Running steps (an attempt, a child): every `resumeAfter` as a watchdog, or sooner for a timer,
            // retry or deadline of its own (a timer raced against a child fires at its time after an unload).
            let watchdog = now + resumeAfter
            let target = earliest.map { $0 > now ? min($0, watchdog) : watchdog } ?? watchdog
            if let due = wakeDue, due > now, due <= target { return .keep }
            wanted = target
        }
        guard wanted != wakeDue else { return .keep }
        wakeDue = wanted
        return wanted.map { .arm($0) } ?? .cancel
    }

    /// The earliest due time of a pending step (a timer, a retry, an event deadline).
    public var nextDue: Int64? {
        steps.lazy.filter { !$0.isResolved }.compactMap(\.dueAt).min()
    }
}
