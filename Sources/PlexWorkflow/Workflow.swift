/// A durable workflow: an `async` function over a ``WorkflowContext``, registered by a stable type name.
///
/// Each instance is a durable virtual actor keyed by its instance id: placed, journaled, recovered and handed
/// off like any durable actor. After a restart the function runs again from the start, and each step it asks
/// the context for (an activity, a timer, an event, the clock) returns its journaled result without running,
/// so the code must reach the outside world only through the context: no `Date()`, random numbers, direct
/// network calls or unordered concurrency in the body.
///
/// ```swift
/// struct Greeting: Workflow {
///     static let typeName = "greeting"
///     func run(_ name: String, context: WorkflowContext) async throws -> String {
///         let id = try await context.activity(LookUpUser.self, name)
///         try await context.sleep(for: .seconds(1))
///         return try await context.activity(SendMail.self, id)
///     }
/// }
/// ```
public protocol Workflow: Sendable {
    /// What an instance starts with.
    associatedtype Input: Codable & Sendable
    /// What an instance finishes with.
    associatedtype Output: Codable & Sendable

    /// The stable name of the type; journaled with every instance. Never change it.
    static var typeName: String { get }

    /// Creates the workflow for one run of an instance.
    init()

    /// The workflow's code.
    func run(_ input: Input, context: WorkflowContext) async throws -> Output
}

/// A unit of work with side effects that a workflow runs with retries: charge a card, send a mail, copy a file.
///
/// An activity runs at least once: an attempt whose completion was journaled never runs again, but one that
/// was running when its node died runs again. Make it idempotent, for example with
/// ``ActivityContext/idempotencyKey``.
public protocol Activity: Sendable {
    /// The activity's argument.
    associatedtype Input: Codable & Sendable
    /// Its result.
    associatedtype Output: Codable & Sendable

    /// The name the activity is registered and journaled under.
    static var name: String { get }

    /// The retry policy when the workflow gives none. Defaults to ``RetryPolicy/default``.
    static var retryPolicy: RetryPolicy { get }

    /// Where its attempts run. Defaults to ``ActivityPlacement/instanceNode``.
    static var placement: ActivityPlacement { get }

    /// Runs one attempt.
    func run(_ input: Input, context: ActivityContext) async throws -> Output
}

extension Activity {
    public static var retryPolicy: RetryPolicy { .default }
    public static var placement: ActivityPlacement { .instanceNode }
}

/// Where an activity's attempts run.
public enum ActivityPlacement: Sendable, Hashable {
    /// On the node that hosts the workflow instance (no network hop).
    case instanceNode
    /// On the nodes of the cluster that register the activity, spread across them: each attempt goes to the
    /// owner of a key of its own among the reachable nodes, and an attempt whose node dies or cannot be
    /// reached fails and is retried (under the retry policy) on another. Register the activity on every node
    /// that runs workflow engines; an attempt has the activity's start-to-close timeout, or 5 minutes.
    case workerPool
}

/// What an activity attempt knows about itself.
public struct ActivityContext: Sendable {
    /// The workflow instance's id.
    public let instanceID: String
    /// The activity's position in the instance's history.
    public let position: Int
    /// The attempt, 1 for the first.
    public let attempt: Int
    /// The activity's name.
    public let name: String
    /// Which run of the instance (how many times it continued as new before).
    public let run: Int

    init(instanceID: String, position: Int, attempt: Int, name: String, run: Int = 0) {
        self.instanceID = instanceID
        self.position = position
        self.attempt = attempt
        self.name = name
        self.run = run
    }

    /// The same for every attempt of this activity in this run of this instance, and unique across instances
    /// and runs: pass it to services that deduplicate requests, so an attempt repeated after a crash takes
    /// effect once. `<instance>/<position>`, or `<instance>@<run>/<position>` after a continue-as-new (or a
    /// purge and a new start under the same id).
    public var idempotencyKey: String { stepKey(instanceID, run: run, position: position) }
}

/// The key of step `position` of run `run` of an instance, unique across instances and runs: `order-7/3`, or
/// `order-7@2/3` after two continue-as-new. An activity's idempotency key, and a child's default id.
func stepKey(_ instanceID: String, run: Int, position: Int) -> String {
    run == 0 ? "\(instanceID)/\(position)" : "\(instanceID)@\(run)/\(position)"
}
