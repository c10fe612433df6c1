public import PlexSpaces

/// A counter: the example every node started by `plex node` hosts.
public struct Counter: VirtualActor {
    public static let typeName = "counter"

    public struct State: ActorState {
        public var count = 0
        public init() {}
    }

    public enum Request: Codable, Sendable {
        case increment
        case add(amount: Int)
        case get
    }

    /// The count after the request, and the node that handled it.
    public struct Reply: Codable, Sendable, Hashable {
        public var count: Int
        public var node: String
        public init(count: Int, node: String) {
            self.count = count
            self.node = node
        }
    }

    public init() {}

    public func handle(_ request: Request, state: inout State, context: ActorContext) async throws -> Reply {
        switch request {
        case .increment: try add(1, to: &state)
        case .add(let amount):
            guard amount >= 0 else { throw ActorFailure(code: "negative", message: "cannot add \(amount)") }
            try add(amount, to: &state)
        case .get: break
        }
        return Reply(count: state.count, node: context.nodeID.rawValue)
    }

    /// Adds `amount`; a count that would overflow is refused (an overflow would trap and take the node down).
    private func add(_ amount: Int, to state: inout State) throws {
        let (sum, overflow) = state.count.addingReportingOverflow(amount)
        guard !overflow else { throw ActorFailure(code: "overflow", message: "cannot add \(amount) to \(state.count)") }
        state.count = sum
    }
}
