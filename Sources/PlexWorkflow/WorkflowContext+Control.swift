internal import PlexCore
internal import Synchronization

/// Thrown by ``WorkflowContext/continueAsNew(with:)``: the executor ends the run and starts the next.
struct ContinueAsNew: Error {
    let input: [UInt8]
}

extension WorkflowContext {
    /// Ends this run of the instance and starts it again with `input` and an empty history: the way to write
    /// an unbounded loop (a subscription, a poller, an entity that lives for ever) whose history stays
    /// bounded. Events delivered and not yet taken stay in the inbox for the next run; the instance keeps its
    /// id, and ``WorkflowDescription/continuedAsNew`` counts the runs. Compensations of this run do not run.
    ///
    /// ```swift
    /// func run(_ state: Tally, context: WorkflowContext) async throws -> Tally {
    ///     var state = state
    ///     state.count += try await context.waitForEvent("add", as: Int.self) ?? 0
    ///     if state.count < 1_000 { try context.continueAsNew(with: state) }
    ///     return state
    /// }
    /// ```
    ///
    /// `input` must be of the workflow's input type.
    public func continueAsNew<Input: Codable & Sendable>(with input: Input) throws -> Never {
        throw ContinueAsNew(input: try BinaryMessageCodec().encode(input))
    }

    /// Answers query `name` with `handler`'s value (as JSON) while the instance runs: a read of its progress
    /// that writes nothing to the journal (``WorkflowHandle/query(_:as:timeout:)``, `plex workflow query`).
    /// Register handlers before the steps they report on. A query is answered once the code has caught up
    /// with its history (after a restart, the handlers a live run would have set are set again). The handler
    /// runs outside the workflow's code, so keep what it reads in a ``WorkflowVariable``:
    ///
    /// ```swift
    /// let done = WorkflowVariable(0)
    /// context.onQuery("progress") { done.value }
    /// for file in files {
    ///     _ = try await context.activity(Copy.self, file)
    ///     done.value += 1
    /// }
    /// ```
    public func onQuery<T: Codable & Sendable>(_ name: String, _ handler: @escaping @Sendable () throws -> T) {
        executor.setQueryHandler(name) { try JSONMessageCodec().encode(try handler()) }
    }
}

/// A value the workflow's code changes and its query handlers read (``WorkflowContext/onQuery(_:_:)``).
public final class WorkflowVariable<Value: Sendable>: Sendable {
    private let storage: Mutex<Value>

    /// Creates a variable holding `value`.
    public init(_ value: Value) {
        storage = Mutex(value)
    }

    /// The value.
    public var value: Value {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}
