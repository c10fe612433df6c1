/// The identity of one call, unique across the cluster.
///
/// A call id is made of the caller node's 64-bit tag (derived from its id and incarnation) and a counter,
/// so two nodes never issue the same id. A retried call keeps its id.
public struct CallID: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The issuing node's tag.
    public let origin: UInt64
    /// The sequence number within the issuing node.
    public let sequence: UInt64

    /// Creates a call id.
    public init(origin: UInt64, sequence: UInt64) {
        self.origin = origin
        self.sequence = sequence
    }

    public var description: String {
        let hex = String(origin, radix: 16)
        return "\(String(repeating: "0", count: 16 - hex.count))\(hex)-\(sequence)"
    }
}
