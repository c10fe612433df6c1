/// The kinds of fault a chaos run injects.
public enum FaultKind: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// `kill -9` of one node, which is started again after a while.
    case kill
    /// `SIGSTOP` of one node for longer than `unreachable_after_ms`, then `SIGCONT`.
    case stop
    /// Every node killed, then started again one at a time while calls keep arriving.
    case cold
    /// Every node killed; one is started again alone (its seeds are down) and the others only later.
    case seedless
    /// A network partition through the proxies, with `plex cluster remove` attempted during it.
    case partition
    /// Sabotage, to check the checks: `kill -9` of one node, its data directory deleted, and the node started
    /// again with a new one. Its ledgers' acknowledged deposits are gone, so a run with it must report them
    /// lost. Never among the default kinds.
    case wipe

    public var description: String { rawValue }

    /// The faults a cluster must survive without losing, doubling or forking anything: every kind but
    /// ``wipe``.
    public static let survivable: [FaultKind] = allCases.filter { $0 != .wipe }
}

/// Which links a partition cuts (nodes by index).
public enum PartitionShape: Sendable, Hashable, CustomStringConvertible {
    /// The node is cut off from every other node, both ways.
    case isolate(Int)
    /// The link between the two nodes is cut, both ways; each still reaches the others.
    case split(Int, Int)

    public var description: String {
        switch self {
        case .isolate(let node): "isolate node \(node + 1)"
        case .split(let a, let b): "split nodes \(a + 1) and \(b + 1)"
        }
    }
}

/// One fault, with every choice it needs already drawn.
public enum PlannedFault: Sendable, Hashable {
    /// Kill `node`, start it again after `downFor`.
    case kill(node: Int, downFor: Duration)
    /// Stop `node` for `stoppedFor`.
    case stop(node: Int, stoppedFor: Duration)
    /// Kill every node, then start them in `order`, waiting `gaps[i]` before starting `order[i]`.
    case cold(order: [Int], gaps: [Duration])
    /// Kill every node, start `alone` and wait `aloneFor`, then start the others in `order` with `gaps`.
    case seedless(alone: Int, aloneFor: Duration, order: [Int], gaps: [Duration])
    /// Cut `shape` for `lasting` in `blackhole` or drop mode; for a split, try to remove `removing` through the
    /// other node of the split while it is cut.
    case partition(shape: PartitionShape, lasting: Duration, blackhole: Bool, removing: Int?)
    /// Kill `node`, delete its data directory, start it again after `downFor`.
    case wipe(node: Int, downFor: Duration)

    /// The kind of fault.
    public var kind: FaultKind {
        switch self {
        case .kill: .kill
        case .stop: .stop
        case .cold: .cold
        case .seedless: .seedless
        case .partition: .partition
        case .wipe: .wipe
        }
    }
}

/// The faults of a chaos run, drawn from a seed: the same seed, nodes, kinds and timing give the same faults
/// in the same order with the same parameters (only how the processes interleave differs between runs).
public struct FaultPlan: Sendable {
    /// The nodes' `unreachable_after_ms`: durations scale with it.
    public let unreachableAfter: Duration
    /// How long a node started alone waits for its seeds before giving up (the node's join timeout).
    public let joinTimeout: Duration
    public let nodes: Int
    public let kinds: [FaultKind]
    private var generator: SeededGenerator

    /// Creates a plan.
    /// - Precondition: `nodes >= 2` and `kinds` is not empty (a partition needs 3 nodes for a split).
    public init(
        seed: UInt64, nodes: Int, kinds: [FaultKind], unreachableAfter: Duration, joinTimeout: Duration = .seconds(3)
    ) {
        precondition(nodes >= 2 && !kinds.isEmpty)
        self.generator = SeededGenerator.stream(0, of: seed)
        self.nodes = nodes
        self.kinds = kinds
        self.unreachableAfter = unreachableAfter
        self.joinTimeout = joinTimeout
    }

    /// The pause before the next fault, and the fault.
    public mutating func next() -> (pause: Duration, fault: PlannedFault) {
        let u = unreachableAfter
        let pause = generator.duration(in: u...(u * 5))
        let kind = kinds.randomElement(using: &generator)!
        let node = Int.random(in: 0..<nodes, using: &generator)
        let fault: PlannedFault
        switch kind {
        case .kill:
            fault = .kill(node: node, downFor: generator.duration(in: (u / 5)...(u * 3)))
        case .wipe:
            fault = .wipe(node: node, downFor: generator.duration(in: (u / 5)...(u * 3)))
        case .stop:
            fault = .stop(node: node, stoppedFor: generator.duration(in: (u * 3 / 2)...(u * 4)))
        case .cold:
            let order = Array(0..<nodes).shuffled(using: &generator)
            fault = .cold(order: order, gaps: order.map { _ in generator.duration(in: (u / 5)...(u * 3)) })
        case .seedless:
            let others = Array(0..<nodes).filter { $0 != node }.shuffled(using: &generator)
            fault = .seedless(
                alone: node, aloneFor: generator.duration(in: (joinTimeout + u)...(joinTimeout + u * 4)),
                order: others, gaps: others.map { _ in generator.duration(in: (u / 5)...(u * 2)) })
        case .partition:
            let lasting = generator.duration(in: (u * 4)...(u * 8))
            let blackhole = Bool.random(using: &generator)
            if nodes >= 3 && Bool.random(using: &generator) {
                let other = (node + Int.random(in: 1..<nodes, using: &generator)) % nodes
                fault = .partition(
                    shape: .split(node, other), lasting: lasting, blackhole: blackhole, removing: node)
            } else {
                fault = .partition(shape: .isolate(node), lasting: lasting, blackhole: blackhole, removing: nil)
            }
        }
        return (pause, fault)
    }
}
