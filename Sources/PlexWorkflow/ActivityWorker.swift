internal import PlexCore

/// Runs one attempt of an activity of a worker pool (``ActivityPlacement/workerPool``) on the node that owns
/// the attempt's key. Each attempt has a key of its own (activity, instance, position, attempt), and the type's
/// placement is ``PlexCore/PlacementStrategy/failover``, so attempts spread over the reachable nodes and a retry
/// after a worker node died goes to a live one.
struct ActivityWorker: VirtualActor {
    static let typeName = "plex.activity"
    static let placement = PlacementStrategy.failover

    struct Request: Codable, Sendable {
        var name: String
        var input: [UInt8]
        var instanceID: String
        var position: Int
        var attempt: Int
        var run: Int
    }

    struct Response: Codable, Sendable {
        var output: [UInt8]
        /// The node the attempt ran on.
        var node: String
    }

    /// The key of an attempt.
    static func key(_ context: ActivityContext) -> String {
        "\(context.name)/\(context.idempotencyKey)/\(context.attempt)"
    }

    let engine: WorkflowEngine

    init() {
        self.init(engine: .unconfigured)
    }

    init(engine: WorkflowEngine) {
        self.engine = engine
    }

    func handle(_ request: Request, state: inout NoState, context: ActorContext) async throws -> Response {
        // One attempt per activation: it need not wait for the idle timeout to go. Asked at the end: asked at
        // the start, the retirement would wait for the attempt's turn, holding up the others in its batch.
        defer { context.deactivateOnIdle() }
        guard let entry = engine.activities.entry(named: request.name) else {
            throw WorkflowError(.unknownActivity, "activity '\(request.name)' is not registered on \(context.nodeID)")
                .actorFailure
        }
        let attempt = ActivityContext(
            instanceID: request.instanceID, position: request.position, attempt: request.attempt, name: request.name,
            run: request.run)
        do {
            return Response(output: try await entry.runEncoded(request.input, attempt), node: "\(context.nodeID)")
        } catch let error as WorkflowError {
            throw error.actorFailure
        }
    }
}
