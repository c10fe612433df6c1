internal import PlexCore
internal import Synchronization

/// The live activations of one node, by actor id.
final class ActivationTable: Sendable {
    private let activations = Mutex<[ActorID: any AnyActivation]>([:])

    /// The activation for `id`, made by `make` if there is none.
    @inline(__always)
    func activation(for id: ActorID, make: () -> any AnyActivation) -> any AnyActivation {
        activations.withLock { table in
            if let existing = table[id] { return existing }
            let created = make()
            table[id] = created
            return created
        }
    }

    /// The activation for `id`, if live.
    func existing(_ id: ActorID) -> (any AnyActivation)? {
        activations.withLock { $0[id] }
    }

    /// Removes `activation` if it is still the one registered for its id.
    func remove(_ activation: any AnyActivation) {
        activations.withLock { table in
            if let current = table[activation.id], current === activation {
                table.removeValue(forKey: activation.id)
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
