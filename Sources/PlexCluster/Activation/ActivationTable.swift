internal import PlexCore
internal import Synchronization

/// The live activations of one node, by actor id.
final class ActivationTable: Sendable {
    /// An actor id with its hash worked out once: a removal rehashes the entries after the removed one in its
    /// probe chain, and hashing two strings each time made removals (an idle sweep ends thousands of finished
    /// workflow instances) a sizeable share of a node's CPU.
    private struct Key: Hashable {
        let id: ActorID
        let hash: Int

        init(_ id: ActorID) {
            self.id = id
            self.hash = id.hashValue
        }

        func hash(into hasher: inout Hasher) { hasher.combine(hash) }
        /// The dictionary's hash: the kept one mixed with the table's seed by a multiply-xorshift, without
        /// hashing it again (a second SipHash per lookup, measurable on a local ask). The kept hash is already
        /// seeded per process; the mix keeps tables with different seeds from sharing a bucket order.
        func _rawHashValue(seed: Int) -> Int {
            var mixed = UInt64(UInt(bitPattern: hash ^ seed))
            mixed = (mixed ^ (mixed >> 32)) &* 0xD6E8_FEB8_6659_FD93
            return Int(truncatingIfNeeded: mixed ^ (mixed >> 32))
        }
        static func == (a: Key, b: Key) -> Bool { a.hash == b.hash && a.id == b.id }
    }

    private let activations = Mutex<[Key: any AnyActivation]>([:])

    /// The activation for `id`, made by `make` if there is none.
    @inline(__always)
    func activation(for id: ActorID, make: () -> any AnyActivation) -> any AnyActivation {
        let key = Key(id)
        return activations.withLock { table in
            if let existing = table[key] { return existing }
            let created = make()
            table[key] = created
            return created
        }
    }

    /// The activation for `id`, if live.
    func existing(_ id: ActorID) -> (any AnyActivation)? {
        let key = Key(id)
        return activations.withLock { $0[key] }
    }

    /// Removes `activation` if it is still the one registered for its id.
    func remove(_ activation: any AnyActivation) {
        let key = Key(activation.id)
        activations.withLock { table in
            if let index = table.index(forKey: key), table.values[index] === activation {
                table.remove(at: index)
            }
        }
    }

    var count: Int { activations.withLock { $0.count } }

    /// Every live activation.
    func all() -> [any AnyActivation] { activations.withLock { Array($0.values) } }

    /// Activations whose last message started before `cutoff`.
    func idle(since cutoff: UInt64) -> [any AnyActivation] {
        activations.withLock { table in table.values.filter { $0.lastUsed < cutoff } }
    }

    /// The `count` least recently used activations.
    func leastRecentlyUsed(_ count: Int) -> [any AnyActivation] {
        guard count > 0 else { return [] }
        let all = activations.withLock { Array($0.values) }
        return Array(all.sorted { $0.lastUsed < $1.lastUsed }.prefix(count))
    }
}
