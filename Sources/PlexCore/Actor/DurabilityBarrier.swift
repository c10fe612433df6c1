internal import Logging

/// A journal write that a durable actor's outward effects wait for: the entry of its earlier messages.
///
/// The node's journal provides it; an ``EffectLog`` holds the one of the messages before its own.
package protocol DurabilityBarrier: AnyObject, Sendable {
    /// Whether the write is known to be durable (does not wait).
    var isDurable: Bool { get }
    /// Returns once the write is durable.
    /// - Throws: The journal's error, when it failed.
    func waitUntilDurable() async throws
}

/// A router for the references a durable actor's handler makes while its earlier messages may still be
/// committing: each call or `tell` waits until they are durable (the output gate), then goes to `router`.
struct DurabilityGatedRouter: ActorCallRouter {
    let router: any ActorCallRouter
    let earlier: any DurabilityBarrier
    var logger: Logger? { router.logger }

    func ask<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request, options: CallOptions)
        async throws -> A.Response
    {
        try await EffectLog.waitUntilDurable(earlier, before: "the call to \(id) was not sent")
        return try await router.ask(type, id, request, options: options)
    }

    func tell<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request) async throws {
        try await EffectLog.waitUntilDurable(earlier, before: "the message to \(id) was not sent")
        try await router.tell(type, id, request)
    }
}
