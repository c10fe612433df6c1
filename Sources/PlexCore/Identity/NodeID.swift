/// The stable identity of a node in a cluster.
///
/// A node keeps its id in its data directory, so a restarted node is the same member with a higher
/// ``Incarnation``. Ids are short printable strings (letters, digits, `-`, `_`, `.`).
public struct NodeID: Hashable, Sendable, Comparable, CustomStringConvertible, Codable {
    /// The id as text.
    public let rawValue: String

    /// Creates a node id.
    ///
    /// - Parameter rawValue: 1–64 characters from `[A-Za-z0-9._-]`.
    /// - Throws: ``NodeError`` with code `invalidConfiguration` when the text is not a valid id.
    public init(_ rawValue: String) throws {
        guard Self.isValid(rawValue) else {
            throw NodeError(.invalidConfiguration, "invalid node id '\(rawValue)': use 1-64 of [A-Za-z0-9._-]")
        }
        self.rawValue = rawValue
    }

    /// Creates a node id without validation; for ids that came from a trusted source (the wire, the journal).
    public init(unchecked rawValue: String) {
        self.rawValue = rawValue
    }

    /// Whether `text` is a valid node id.
    public static func isValid(_ text: String) -> Bool {
        guard !text.isEmpty, text.utf8.count <= 64 else { return false }
        return text.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D
                || c == 0x5F || c == 0x2E
        }
    }

    public var description: String { rawValue }
    public static func < (lhs: NodeID, rhs: NodeID) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        self.init(unchecked: try decoder.singleValueContainer().decode(String.self))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }
}

/// How many times a node with a given ``NodeID`` has started. It grows on every restart.
public typealias Incarnation = UInt64
