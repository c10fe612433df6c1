import Foundation
import PlexCore
import Testing

@testable import PlexJournal

@Suite("Abandoning a journal (a simulated crash)")
struct AbandonTests {
    func size(_ path: String) -> Int {
        (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    }

    @Test(
        "abandoning drops what is queued, files nothing and leaves the write-ahead log; the next open recovers every committed entry"
    )
    func abandon() async throws {
        let path = temporaryJournalPath()
        let journal = try await Journal.open(path: path, configuration: .init(shards: 1))
        try await journal.append((1...5).map { entry(counterA, $0) })
        #expect(journal.writer.unfiled.count == 5)
        // An append still queued when the process dies is never committed.
        let held = try await HeldWriter.hold(journal)
        let queued = journal.enqueue([entry(counterA, 6)])
        try await waitUntil { journal.writer.queuedAppends == 1 }
        let abandoning = Task { await journal.abandon() }
        let dropped = await #expect(throws: JournalError.self) { try await queued.wait() }
        #expect(dropped?.code == .closed)
        try await held.release()
        await abandoning.value
        let late = await #expect(throws: JournalError.self) { try await journal.append([entry(counterA, 7)]) }
        #expect(late?.code == .closed)
        // Closing would have filed the log and checkpointed the write-ahead log into the database (deleting it).
        #expect(size(path + "-wal") > 0)

        let reopened = try await Journal.open(path: path, configuration: .init(shards: 1))
        #expect(reopened.writer.unfiled.count == 5)  // read back from the log: nothing was filed
        #expect(try await reopened.entries(for: counterA).map(\.sequence) == [1, 2, 3, 4, 5])
        try await reopened.append([entry(counterA, 6)])
        await reopened.close()
        #expect(size(path + "-wal") == 0)
    }
}
