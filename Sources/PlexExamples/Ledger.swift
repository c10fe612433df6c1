public import PlexSpaces

/// A durable balance: every deposit and withdrawal is journaled on the owner before it is acknowledged,
/// and survives the owner's crash.
public struct Ledger: VirtualActor {
    public static let typeName = "ledger"
    public static let durability = Durability.durable(checkpointEvery: 100)

    public struct State: ActorState {
        public var balance = 0
        public var operations = 0
        public init() {}
    }

    public enum Request: Codable, Sendable {
        case deposit(amount: Int)
        case withdraw(amount: Int)
        case balance
    }

    public struct Reply: Codable, Sendable, Hashable {
        public var balance: Int
        public var operations: Int
        public var node: String
    }

    public init() {}

    public func handle(_ request: Request, state: inout State, context: ActorContext) async throws -> Reply {
        switch request {
        case .deposit(let amount):
            guard amount > 0 else { throw ActorFailure(code: "invalid-amount", message: "deposit \(amount)") }
            let (sum, overflow) = state.balance.addingReportingOverflow(amount)
            guard !overflow else {
                throw ActorFailure(code: "overflow", message: "deposit \(amount) to \(state.balance)")
            }
            state.balance = sum
            state.operations += 1
        case .withdraw(let amount):
            guard amount > 0, amount <= state.balance else {
                throw ActorFailure(code: "insufficient-funds", message: "withdraw \(amount) from \(state.balance)")
            }
            state.balance -= amount
            state.operations += 1
        case .balance: break
        }
        return Reply(balance: state.balance, operations: state.operations, node: context.nodeID.rawValue)
    }
}
