internal import NIOCore
package import PlexCore
internal import PlexWire

/// The limits a node puts on what it holds and sends: actors' mailboxes and the size of a frame.
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

    /// Fails unless a frame with `body` fits in ``NodeConfiguration/maximumFrameSize``, which peers enforce on
    /// what they read: a frame over it would close the whole connection, so the one message fails instead.
    ///
    /// - Parameters:
    ///   - code: `invalidRequest` for a request this node was asked to send, `codecFailure` for a reply or a
    ///     transfer it produced.
    ///   - what: Names the frame for the message (evaluated only on failure).
    func requireFits(_ body: ByteBuffer, code: CallError.Code, _ what: @autoclosure () -> String) throws(CallError) {
        let size = Wire.headerSize + body.readableBytes
        guard size <= configuration.maximumFrameSize else {
            throw CallError(
                code, "\(what()) takes \(size) bytes, over max_frame_size (\(configuration.maximumFrameSize))")
        }
    }

    /// The frame that answers a call: the reply, or the error (also when the reply is too large to send).
    func replyFrame(
        _ result: Result<ByteBuffer, CallError>, to actor: ActorID, flags: Wire.FrameFlags, correlationID: UInt64
    ) -> Wire.Frame {
        do {
            let payload = try result.get()
            try requireFits(payload, code: .codecFailure, "the reply of \(actor) (the call ran)")
            return Wire.Frame(kind: .reply, flags: flags, correlationID: correlationID, body: payload)
        } catch {
            return Self.errorFrame(error, correlationID: correlationID)
        }
    }

    /// How many messages wait for the live activation of `id` (nil if it is not active): for benchmarks
    /// and diagnostics.
    package func queuedMessages(for id: ActorID) -> Int? {
        table.existing(id)?.mailbox.waiting
    }
}
