/// The identity of a virtual actor: its type name and its key.
///
/// An actor id is all a caller needs: the cluster computes the owning node from it. Its text form is
/// `type/key` (the key may itself contain `/`).
public struct ActorID: Hashable, Sendable, CustomStringConvertible, Codable {
    /// The actor's type name, as in ``VirtualActor/typeName``.
    public let typeName: String
    /// The key that tells instances of one type apart.
    public let key: String

    /// Creates an actor id from a type name and a key.
    public init(typeName: String, key: String) {
        self.typeName = typeName
        self.key = key
    }

    /// Parses the text form `type/key`.
    ///
    /// - Throws: ``CallError`` with code `invalidRequest` when there is no `/`, or the type or key is empty.
    public init(parsing text: String) throws {
        guard let slash = text.firstIndex(of: "/") else {
            throw CallError(.invalidRequest, "actor id '\(text)' is not of the form type/key")
        }
        let type = String(text[..<slash])
        let key = String(text[text.index(after: slash)...])
        guard !type.isEmpty, !key.isEmpty else {
            throw CallError(.invalidRequest, "actor id '\(text)' has an empty type or key")
        }
        self.init(typeName: type, key: key)
    }

    public var description: String { "\(typeName)/\(key)" }
}
