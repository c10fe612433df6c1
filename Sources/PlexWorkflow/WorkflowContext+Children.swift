internal import PlexCore

extension WorkflowContext {
    /// Runs workflow `W` as a child instance and waits for its result.
    ///
    /// The child is an instance of its own (placed on whichever node owns `id`, with its own history,
    /// status and handle); the parent's history records its id when it starts and its outcome when it ends,
    /// so a replay neither starts it again nor waits for it again.
    /// - Parameter id: The child's instance id; by default the parent's id and the step's position
    ///   (`order-7/3`; after a continue-as-new, with the run: `order-7@2/3`), the same on every replay.
    ///   Starting is idempotent by id.
    /// - Throws: ``WorkflowError`` `childFailed` (with the child's failure) when it failed, was cancelled or was
    ///   terminated; `cancelled` when this instance is asked to cancel (the child is asked too).
    public func child<W: Workflow>(_ type: W.Type, id: String? = nil, input: W.Input) async throws -> W.Output {
        try await startChild(type, id: id, input: input).value()
    }

    /// Starts workflow `W` as a child instance and returns once it has started; await the returned future
    /// for its result, or leave it running (it outlives this instance).
    public func startChild<W: Workflow>(_ type: W.Type, id: String? = nil, input: W.Input) async throws
        -> WorkflowFuture<W.Output>
    {
        let (instanceID, run) = (instanceID, executor.run)
        let defaultID: (Int) -> String = { id ?? stepKey(instanceID, run: run, position: $0) }
        let (position, recorded) = try executor.claim(.child, W.typeName, target: defaultID)
        let childID = recorded?.target ?? defaultID(position)
        var step =
            recorded
            ?? WorkflowStep(
                position: position, kind: .child, name: W.typeName, startedAt: executor.clock.now(), target: childID)
        if recorded == nil { step = try await executor.record(step) }
        if !step.isResolved {
            let bytes = try BinaryMessageCodec().encode(input)
            do {
                try await retrying {
                    try await executor.driver.startChild(
                        id: childID, type: W.typeName, input: bytes, now: executor.clock.now())
                }
            } catch let error as WorkflowError where error.code != .cancelled {
                step.outcome = .failure(
                    .activity(WorkflowError(.childFailed, "child workflow \(childID) did not start: \(error.message)")))
                step.completedAt = executor.clock.now()
                step = try await executor.record(step)
            }
        }
        let started = step
        let task = executor.startFuture(at: position) { [self] in try await awaitChild(started) }
        return WorkflowFuture(position: position, task: task) {
            try BinaryMessageCodec().decode(W.Output.self, from: $0)
        }
    }

    /// Waits for the child of step `step` to close (its owner tells this instance when it does; until then
    /// this asks it again now and then), and records how it ended.
    private func awaitChild(_ step: WorkflowStep) async throws -> [UInt8] {
        var step = step
        let childID = step.target ?? ""
        let clock = executor.clock
        while true {
            switch step.outcome {
            case .value(let bytes)?: return bytes
            case .failure(let failure)?:
                throw WorkflowError(.childFailed, failure.message, failure: failure)
            case .timedOut?: throw WorkflowError(.timedOut, "child workflow \(childID) timed out")
            case nil: break
            }
            let seen = executor.driver.changes.generation
            do {
                try executor.checkCancelRequest()
            } catch {
                try? await executor.driver.cancelChild(id: childID)
                throw error
            }
            let child = try await retrying { try await executor.driver.describeChild(id: childID) }
            if child.status.isClosed {
                step.outcome = Self.outcome(of: child)
                step.completedAt = clock.now()
                step = try await executor.record(step)
                continue
            }
            await executor.driver.changes.wait(after: seen, until: clock.now() + executor.pollInterval, clock: clock)
            if Task.isCancelled {
                if executor.isAbandoned(step.position) { try? await executor.driver.cancelChild(id: childID) }
                throw CancellationError()
            }
        }
    }

    private static func outcome(of child: WorkflowDescription) -> WorkflowStep.Outcome {
        if child.status == .completed { return .value(child.output ?? []) }
        let reason = child.failure?.message ?? child.status.rawValue
        return .failure(
            .activity(WorkflowError(.childFailed, "child workflow \(child.id) \(child.status.rawValue): \(reason)")))
    }

    /// How calls to a child that fail with something else than a ``WorkflowError`` are retried.
    private static let callRetry = RetryPolicy(initialInterval: .milliseconds(100), maximumInterval: .seconds(5))

    /// Runs `body` until it succeeds or throws a ``WorkflowError``: other errors (a node that cannot be
    /// reached, a timeout) are retried with ``callRetry``'s growing pause, 100 ms doubling up to 5 s, until the
    /// executor stops.
    private func retrying<T>(_ body: () async throws -> T) async throws -> T {
        var failures = 0
        while true {
            do {
                return try await body()
            } catch let error as WorkflowError {
                throw error
            } catch {
                try Task.checkCancellation()
                executor.logger.debug(
                    "a child workflow call failed; trying again",
                    metadata: ["workflow.id": "\(instanceID)", "error": "\(error)"])
                failures += 1
                let pause = Self.callRetry.baseDelayMilliseconds(afterAttempt: failures)
                try await executor.clock.sleep(until: executor.clock.now() + pause)
            }
        }
    }
}
