internal import PlexCore
internal import Synchronization

/// What the activation table holds, without the actor's type.
protocol AnyActivation: AnyObject, Sendable {
    var id: ActorID { get }
    var mailbox: Mailbox { get }
    /// When the activation last started a message (monotonic nanoseconds).
    var lastUsed: UInt64 { get }
    /// Runs the deactivation hook and marks the activation finished; the caller holds the turn.
    func deactivateLocked() async
}

/// Why an activation could not take a message.
enum ActivationFailure: Error {
    /// The activation was deactivated while the message waited; look it up again.
    case deactivated
}

/// One live instance of a virtual actor: its behaviour, its state and its turn.
final class Activation<A: VirtualActor>: AnyActivation, @unchecked Sendable {
    // `state` and `phase` are guarded by `mailbox`: only the holder of the turn touches them.
    private enum Phase { case new, active, deactivated }

    let id: ActorID
    let mailbox = Mailbox()
    private let behaviour: A
    private var state: A.State
    private var phase: Phase = .new
    private let lastUsedStorage: Atomic<UInt64>
    private let makeContext: @Sendable (CallID?) -> ActorContext

    init(id: ActorID, behaviour: A, now: UInt64, makeContext: @escaping @Sendable (CallID?) -> ActorContext) {
        self.id = id
        self.behaviour = behaviour
        self.state = A.initialState(for: id)
        self.lastUsedStorage = Atomic(now)
        self.makeContext = makeContext
    }

    var lastUsed: UInt64 { lastUsedStorage.load(ordering: .relaxed) }

    /// Takes the turn, handles `request`, and gives the turn back.
    /// - Throws: ``ActivationFailure/deactivated``, or the handler's error.
    func ask(_ request: A.Request, callID: CallID, now: UInt64) async throws -> A.Response {
        await mailbox.acquire()
        defer { mailbox.release() }
        return try await handleLocked(request, callID: callID, now: now)
    }

    /// Handles `request`; the caller holds the turn.
    func handleLocked(_ request: A.Request, callID: CallID, now: UInt64) async throws -> A.Response {
        switch phase {
        case .deactivated: throw ActivationFailure.deactivated
        case .new:
            try await behaviour.activate(state: &state, context: makeContext(nil))
            phase = .active
        case .active: break
        }
        lastUsedStorage.store(now, ordering: .relaxed)
        return try await behaviour.handle(request, state: &state, context: makeContext(callID))
    }

    func deactivateLocked() async {
        guard phase != .deactivated else { return }
        let wasActive = phase == .active
        phase = .deactivated
        if wasActive { await behaviour.deactivate(state: &state, context: makeContext(nil)) }
    }
}
