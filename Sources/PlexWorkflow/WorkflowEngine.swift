public import Logging
public import PlexCluster
internal import PlexCore
internal import Synchronization
internal import Tracing

/// Hosts durable workflows on a node: the workflow types and activities it can run, and the settings of their
/// instances.
///
/// ```swift
/// let workflows = WorkflowEngine()
/// workflows.register(Greeting.self)
/// workflows.register(activity: SendMail(mailer: mailer))
/// let node = try await PlexNode.start(configuration) { node in workflows.install(on: node) }
/// let handle = try await WorkflowClient(node: node).start(Greeting.self, id: "greet-ada", input: "Ada")
/// print(try await handle.result())
/// ```
///
/// Every node that may own instances must register the same workflow types (placement picks the owner of
/// each instance id like any actor's).
public final class WorkflowEngine: Sendable {
    /// Settings of a node's workflow instances.
    public struct Options: Sendable {
        /// How often a running instance's wake-up reminder fires while it runs steps: after a crash or a
        /// handoff, the instance's code starts again on its owner within this time of the owner being up.
        /// Timers and retries wake it at their own due times. Default: 5 s.
        public var resumeInterval: Duration
        /// The clock workflows read and wait on. Default: the system clock.
        public var clock: any WorkflowClock
        /// Called on the owning node once an instance's ending is durable (with its id and final status).
        public var onClose: (@Sendable (String, WorkflowStatus) -> Void)?
        /// How long a completed activity (or a recorded `now`, `random`, `uuid`) may wait to be journaled together
        /// with the steps after it: a run of fast steps costs one journal entry instead of one each. The
        /// price: a crash within this window of a completion runs that activity again (activities run at
        /// least once in any case). A pending timer, retry or event wait, and the ending, are journaled at once
        /// with whatever waits. `.zero` journals every completion before the code goes on. Default: 2 ms.
        public var batchWindow: Duration
        /// When the instance's code waits longer than this (a timer, a retry's backoff, an event deadline; a
        /// wait for an event without a deadline counts as long) with no activity attempt running, the instance
        /// unloads: its activation ends, so it costs nothing but its
        /// journal rows, and its wake-up reminder (at the due time) or the event brings it back, replaying its
        /// code from the journal. `nil` keeps waiting instances in memory. Default: 1 s.
        public var unloadAfter: Duration?

        /// Creates settings.
        public init(
            resumeInterval: Duration = .seconds(5), clock: any WorkflowClock = SystemWorkflowClock(),
            onClose: (@Sendable (String, WorkflowStatus) -> Void)? = nil, batchWindow: Duration = .milliseconds(2),
            unloadAfter: Duration? = .seconds(1)
        ) {
            self.resumeInterval = resumeInterval
            self.clock = clock
            self.onClose = onClose
            self.batchWindow = batchWindow
            self.unloadAfter = unloadAfter
        }
    }

    /// A registered workflow type without its static type.
    struct Entry: Sendable {
        let run: @Sendable ([UInt8], WorkflowContext) async throws -> [UInt8]
        /// The binary input for a JSON one (for the CLI and other clients without the Swift types).
        let inputFromJSON: @Sendable ([UInt8]) throws -> [UInt8]
        /// The JSON form of a binary result.
        let outputToJSON: @Sendable ([UInt8]) throws -> [UInt8]
    }

    /// The settings.
    public let options: Options
    let logger: Logger
    let activities = ActivityRegistry()
    /// The index changes of this engine's instances, sent in batches.
    let index = IndexBatcher()
    let metrics = WorkflowMetrics()
    /// Writes held-back steps of instances whose activity attempt outlasts the batch window.
    let flushes: FlushScheduler
    /// The tracer of the nodes it is installed on (their activity attempts are spans), if they trace.
    private let tracers = Mutex<(any Tracer)?>(nil)
    var tracer: (any Tracer)? { tracers.withLock { $0 } }
    private let workflows = Mutex<[String: Entry]>([:])

    /// An engine with nothing registered (what an instance made without one sees).
    static let unconfigured = WorkflowEngine()

    /// Creates an engine.
    public init(options: Options = Options(), logger: Logger = Logger(label: "plex.workflow")) {
        self.options = options
        self.logger = logger
        self.flushes = FlushScheduler(clock: options.clock, window: options.batchWindow.milliseconds)
    }

    /// Registers a workflow type.
    public func register<W: Workflow>(_ type: W.Type) {
        let entry = Entry(
            run: { input, context in
                let value = try BinaryMessageCodec().decode(W.Input.self, from: input)
                return try BinaryMessageCodec().encode(try await W().run(value, context: context))
            },
            inputFromJSON: { json in
                try BinaryMessageCodec().encode(try JSONMessageCodec().decode(W.Input.self, from: json))
            },
            outputToJSON: { bytes in
                try JSONMessageCodec().encode(try BinaryMessageCodec().decode(W.Output.self, from: bytes))
            })
        workflows.withLock { $0[W.typeName] = entry }
    }

    /// Registers an activity that workflows on this node can run (by its ``Activity/name``).
    public func register<A: Activity>(activity: A) {
        activities.register(activity)
    }

    func workflow(named name: String) -> Entry? {
        workflows.withLock { $0[name] }
    }

    /// Lets `node` host workflow instances; call it where the node's actor types are registered.
    public func install(on node: PlexNode) {
        if let tracer = node.tracer { tracers.withLock { $0 = tracer } }
        node.register(WorkflowInstance.self) { WorkflowInstance(engine: self) }
        node.register(WorkflowIndex.self)
        node.register(ActivityWorker.self) { ActivityWorker(engine: self) }
    }
}
