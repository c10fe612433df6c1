internal import PlexCore

/// A durable actor's effects wait for the write of its earlier messages (the output gate).
extension PendingWrite: DurabilityBarrier {
    package var isDurable: Bool {
        if case .success = result { return true }
        return false
    }

    package func waitUntilDurable() async throws { try await wait() }
}
