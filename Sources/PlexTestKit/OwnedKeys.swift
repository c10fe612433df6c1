public import PlexSpaces

/// The first key `"\(prefix)\(i)"` (i = 0, 1, …) of actor type `typeName` that `owner` owns in `node`'s view of
/// the ring: for tests that need a call to cross nodes, or to stay on one.
public func key(ofType typeName: String, ownedBy owner: NodeID, on node: PlexNode, prefix: String = "k") -> String {
    var i = 0
    while node.owner(of: ActorID(typeName: typeName, key: "\(prefix)\(i)")) != owner { i += 1 }
    return "\(prefix)\(i)"
}
