import Foundation
import PlexCore
import PlexExamples
import PlexJournal
import PlexWire
import Testing

@testable import PlexCluster

/// A host that stores a transfer the way a handoff push does (without the actor's turn, not as its own pull)
/// while the activation asks it to locate the actor.
private final class PushingHost: ActivationHost, @unchecked Sendable {
    let journal: Journal
    let transfer: ActorTransfer

    init(journal: Journal, transfer: ActorTransfer) {
        self.journal = journal
        self.transfer = transfer
    }

    func locate(_ id: ActorID, holding: ActorHolding) async throws -> Bool {
        #expect(!holding.isHeld)  // the activation read before the push was stored
        #expect(try await journal.adopt(transfer, from: NodeID(unchecked: "node-p")) == .stored)
        return false
    }
}

@Suite("Activation recovery")
struct ActivationRecoveryTests {
    private func journal() async throws -> Journal {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("plex-activation-\(UUID())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try await Journal.open(path: directory.appendingPathComponent("journal.sqlite").path)
    }

    private func activation(_ id: ActorID, _ journal: Journal, host: (any ActivationHost)? = nil) -> Activation<Ledger>
    {
        Activation<Ledger>(
            id: id, behaviour: Ledger(), now: 0, journal: journal, retentionMilliseconds: 0, turns: TurnTasks(),
            host: host,
            makeContext: { callID, key, replaying in
                ActorContext(
                    id: id, nodeID: NodeID(unchecked: "node-r"), callID: callID, idempotencyKey: key,
                    isReplaying: replaying, router: OfflineRouter())
            })
    }

    private func send(_ request: Ledger.Request, to activation: Activation<Ledger>) async throws -> Ledger.Reply {
        await activation.mailbox.acquire()
        defer { activation.mailbox.release() }
        var write: PendingWrite?
        let reply = try await activation.run(
            request, callID: CallID(origin: 1, sequence: 1), deadline: .never, write: &write)
        try await write?.wait()
        return reply
    }

    @Test("an actor pushed here while its activation looked for it recovers from what was pushed, not from nothing")
    func pushDuringLocate() async throws {
        let id = ActorID(typeName: Ledger.typeName, key: "pushed")
        let sender = try await journal()
        _ = try await send(.deposit(amount: 5), to: activation(id, sender))
        _ = try await send(.deposit(amount: 7), to: activation(id, sender))
        guard
            case .transfer(let transfer) = try await sender.beginHandOff(
                id, to: NodeID(unchecked: "node-r"), keysSince: 0)
        else {
            Issue.record("expected a transfer")
            return
        }
        let receiver = try await journal()
        let host = PushingHost(journal: receiver, transfer: transfer)
        let reply = try await send(.balance, to: activation(id, receiver, host: host))
        withExtendedLifetime(host) {}  // the activation holds its host unowned
        #expect(reply.balance == 12 && reply.operations == 2)
        await sender.close()
        await receiver.close()
    }
}
