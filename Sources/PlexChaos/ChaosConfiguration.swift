/// The settings of a chaos run.
public struct ChaosConfiguration: Sendable {
    /// The `plex` binary the nodes run.
    public var plexBinary: String
    /// How long faults are injected while the load runs.
    public var duration: Duration
    /// Fixes the faults, their moments and parameters, and the deposits.
    public var seed: UInt64
    /// How many `plex node` processes.
    public var nodes: Int
    /// The kinds of fault to inject.
    public var faults: [FaultKind]
    /// How many ledgers the deposits spread over.
    public var ledgers: Int
    /// Callers per node; each makes one deposit at a time.
    public var callersPerNode: Int
    /// The nodes' heartbeat interval.
    public var heartbeat: Duration
    /// The nodes' `unreachable_after_ms`; fault durations scale with it.
    public var unreachableAfter: Duration
    /// How long the end may take to heal, complete every key and read every ledger.
    public var settle: Duration
    /// Where the data directories, logs and journal copies go.
    public var directory: String
    /// The cluster name and secret the nodes and callers use.
    public var clusterName: String
    public var secret: String
    /// Whether progress goes to stderr. Default: `true`.
    public var logsProgress = true

    /// Creates a configuration with the run's defaults.
    public init(
        plexBinary: String, directory: String, duration: Duration = .seconds(120), seed: UInt64 = 1,
        nodes: Int = 3, faults: [FaultKind] = FaultKind.survivable, ledgers: Int = 24, callersPerNode: Int = 2,
        heartbeat: Duration = .milliseconds(100), unreachableAfter: Duration = .milliseconds(1000),
        settle: Duration = .seconds(120), clusterName: String = "chaos",
        secret: String = "chaos-secret-0123456789abcdef"
    ) {
        self.plexBinary = plexBinary
        self.directory = directory
        self.duration = duration
        self.seed = seed
        self.nodes = nodes
        self.faults = faults
        self.ledgers = ledgers
        self.callersPerNode = callersPerNode
        self.heartbeat = heartbeat
        self.unreachableAfter = unreachableAfter
        self.settle = settle
        self.clusterName = clusterName
        self.secret = secret
    }

    /// The ledgers' keys.
    public var ledgerKeys: [String] { (0..<ledgers).map { "acct-\($0)" } }

    /// The id of node `index` (from 0): `node-1`, `node-2`, ….
    public static func nodeID(_ index: Int) -> String { "node-\(index + 1)" }
}
