public import FoundationEssentials
public import Logging

/// What a handler knows about the message it handles and the node it runs on, and its deterministic tools.
public struct ActorContext: Sendable {
    /// The actor's identity.
    public let id: ActorID
    /// The node hosting this activation.
    public let nodeID: NodeID
    /// The call being handled, or `nil` in the activation and deactivation hooks.
    public let callID: CallID?
    /// The caller's idempotency key, if it gave one.
    public let idempotencyKey: String?
    /// Whether the handler is re-running a journaled message to rebuild a durable actor's state. Its reply
    /// goes nowhere; effects outside the actor's state must not be repeated.
    public let isReplaying: Bool
    let router: any ActorCallRouter
    /// Where a durable actor's side effects are recorded (or replayed from); `nil` for ephemeral actors.
    package var effects: EffectLog?
    /// The actor type's request type, which reminders must carry.
    package var requestType: Any.Type?
    /// The activation, to end it early (``deactivateOnIdle()``).
    package var activation: (any ActivationControl)?

    /// Creates a context; the node runtime does this.
    public init(
        id: ActorID, nodeID: NodeID, callID: CallID?, idempotencyKey: String? = nil, isReplaying: Bool = false,
        router: any ActorCallRouter
    ) {
        self.idempotencyKey = idempotencyKey
        self.id = id
        self.nodeID = nodeID
        self.callID = callID
        self.isReplaying = isReplaying
        self.router = router
    }

    /// A logger for the handler: the node's, with `actor.id` and `call.id` (and the node's `node.id`) as
    /// metadata; silent while the handler replays a journaled message, so a recovery does not log twice.
    public var logger: Logger {
        guard !isReplaying, var logger = router.logger else {
            return Logger(label: "plex.actor", factory: { _ in SwiftLogNoOpLogHandler() })
        }
        logger[metadataKey: "actor.id"] = "\(id)"
        if let callID { logger[metadataKey: "call.id"] = "\(callID)" }
        return logger
    }

    /// A reference to another actor (or to this one).
    ///
    /// In a durable actor, a call or `tell` through the reference waits until the actor's earlier messages
    /// are durable (an output gate), so no other actor hears of a state that a crash could still lose.
    public func actor<B: VirtualActor>(_ type: B.Type, key: String) -> ActorRef<B> {
        guard let earlier = effects?.pendingEarlier else { return ActorRef<B>(key: key, router: router) }
        return ActorRef<B>(key: key, router: DurabilityGatedRouter(router: router, earlier: earlier))
    }

    /// Runs a side effect once per durably processed message.
    ///
    /// In a durable actor the outcome is journaled with the message: its result, or the error it threw. When
    /// the message is replayed to rebuild the state, `body` does not run: the recorded result is returned,
    /// or the recorded error thrown, so the handler takes the same path as the first time. (If the node
    /// crashes before the message is journaled, the message never happened: its caller gets no reply, and a
    /// retry runs the effect again.) `body` starts only once the actor's earlier messages are durable (an
    /// output gate: an effect never acts on a state that a crash could still lose); while nothing is
    /// pending, that costs nothing. In an ephemeral actor `body` simply runs.
    ///
    /// An error `body` throws in a durable actor reaches the handler as the same value on the first run and
    /// on replay: an ``ActorFailure`` or a ``CallError`` as itself, any other error as a
    /// ``RecordedEffectFailure`` naming its type and message. To branch on an effect's error, throw an
    /// ``ActorFailure`` with a code from `body`.
    ///
    /// - Parameters:
    ///   - name: Names the effect; replay checks that the code asks for the same effects in the same order.
    ///   - body: The effect; its result must be `Codable`.
    /// - Throws: What `body` threw (as above); ``CallError`` `storageFailure` when an earlier message could
    ///   not be journaled (`body` did not start), or, on replay, when the handler asks for another effect than
    ///   the journal recorded at this position (non-determinism: recovery stops and names the position).
    public func run<T: Codable & Sendable>(_ name: String, _ body: () async throws -> T) async throws -> T {
        guard let effects else { return try await body() }
        return try await effects.run(name, body)
    }

    /// Ends this activation once it is idle: within about 100 ms after this message (together with others that
    /// asked meanwhile), unless another message comes first, instead of after the node's idle timeout. The next
    /// message activates it again (a durable actor recovers from its journal). For an actor that knows it is
    /// done for a while, such as a finished workflow instance.
    public func deactivateOnIdle() {
        activation?.deactivateOnIdle()
    }

    /// The current time, journaled in durable actors so replay sees the same value. It does not wait for
    /// earlier messages to be durable: reading the clock reaches nothing outside the actor.
    public func now() async throws -> Date {
        guard let effects else { return Date() }
        return try await effects.run("plex.now", gated: false) { Date() }
    }

    /// A random integer in `range`, journaled in durable actors so replay sees the same value (without
    /// waiting for earlier messages to be durable, like ``now()``).
    public func random(in range: ClosedRange<Int>) async throws -> Int {
        guard let effects else { return Int.random(in: range) }
        return try await effects.run("plex.random", gated: false) { Int.random(in: range) }
    }

    /// Sets a durable reminder: `request` is delivered to this actor (as a message, through its handler) once
    /// `delay` has passed, even if the node restarts or the actor moves to another node meanwhile.
    ///
    /// The reminder is journaled with the message that sets it, so it exists exactly when that message was
    /// durably processed; like ``run(_:_:)``, it waits until the actor's earlier messages are durable. Delivery is at least once; each delivery carries the idempotency key
    /// `plex.reminder/<name>/<due>`, so a delivery repeated after a crash returns the stored reply instead of
    /// running again, and the handler can tell reminders by ``idempotencyKey``. The fire time is journaled
    /// with the delivered message. Setting a reminder with the same name replaces it; a handler can set it
    /// again while handling it (a periodic reminder). Nodes check for due reminders every 100 ms.
    ///
    /// - Parameters:
    ///   - request: What to deliver; it must be the actor's own `Request` type.
    ///   - delay: How long from now.
    ///   - name: Names the reminder within this actor.
    /// - Throws: ``CallError`` `invalidRequest` in an ephemeral actor (reminders need the journal) or when
    ///   `request` is not the actor's request type.
    public func schedule<Request: Codable & Sendable>(_ request: Request, after delay: Duration, name: String)
        async throws
    {
        let effects = try reminderLog(for: Request.self)
        // The due time is an effect, so replay computes the same one.
        let due = try await run("plex.reminder.\(name)") {
            Int64((Date().timeIntervalSince1970 * 1000).rounded())
                + Int64(clamping: delay.clampedNanoseconds / 1_000_000)
        }
        effects.record(.init(name: name, due: due, payload: try BinaryMessageCodec().encode(request)))
    }

    /// Cancels this actor's reminder `name`, if it is set (journaled with the message, like ``schedule(_:after:name:)``).
    public func cancelReminder(_ name: String) throws {
        try reminderLog(for: nil).record(.init(name: name, due: nil, payload: []))
    }

    private func reminderLog(for type: Any.Type?) throws -> EffectLog {
        guard let effects else {
            throw CallError(.invalidRequest, "\(id): reminders need a durable actor type (static let durability)")
        }
        if let type, let requestType, type != requestType {
            throw CallError(.invalidRequest, "\(id): a reminder must carry \(requestType), not \(type)")
        }
        return effects
    }
}

/// What an actor's context can ask of its activation (the node runtime implements it).
package protocol ActivationControl: AnyObject, Sendable {
    /// Ends the activation once it is idle.
    func deactivateOnIdle()
}
