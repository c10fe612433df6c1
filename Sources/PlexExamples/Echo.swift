public import PlexSpaces

/// Replies with what it was sent and where it ran; stateless, so it may fail over.
public struct Echo: VirtualActor {
    public static let typeName = "echo"
    /// Stateless, so it may run anywhere: when its owner is unreachable it re-homes at once.
    public static let placement = PlacementStrategy.failover

    public struct Request: Codable, Sendable {
        public var text: String
        public init(text: String) { self.text = text }
    }

    public struct Reply: Codable, Sendable, Hashable {
        public var text: String
        public var node: String
        public var actor: String
    }

    public init() {}

    public func handle(_ request: Request, state: inout NoState, context: ActorContext) async throws -> Reply {
        Reply(text: request.text, node: context.nodeID.rawValue, actor: context.id.description)
    }
}

extension PlexNode {
    /// Registers the bundled example actors (``Counter``, ``Echo``, ``Ledger``, ``DurableCounter``,
    /// ``PaymentProcessor``) and workflows (``OrderWorkflow``, ``StepsWorkflow``).
    public func registerExamples(workflows: WorkflowEngine = .examples()) {
        register(Counter.self)
        register(Echo.self)
        register(Ledger.self)
        register(DurableCounter.self)
        register(PaymentProcessor.self)
        workflows.install(on: self)
    }
}
