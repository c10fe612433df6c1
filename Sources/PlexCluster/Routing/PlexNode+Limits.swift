package import PlexCore

/// The limits a node puts on what it holds: actors' mailboxes.
extension PlexNode {
    /// How many messages may wait for one actor (``ActivationConfiguration/maximumMailboxDepth``).
    var mailboxLimit: Int { configuration.activation.maximumMailboxDepth }

    /// The error for a message refused because `id`'s mailbox is full; logs a warning on the first refusal
    /// since the mailbox was last empty.
    func mailboxFull(_ id: ActorID, first: Bool) -> CallError {
        if first {
            logger.warning(
                "mailbox full; refusing messages with overloaded until it drains",
                metadata: ["actor.id": "\(id)", "mailbox_limit": "\(mailboxLimit)"])
        }
        return CallError(
            .overloaded,
            "\(id) has \(mailboxLimit) messages waiting, its mailbox limit (mailbox_limit); this one did not run")
    }

    /// How many messages wait for the live activation of `id` (nil if it is not active): for benchmarks
    /// and diagnostics.
    package func queuedMessages(for id: ActorID) -> Int? {
        table.existing(id)?.mailbox.waiting
    }
}
