import PlexCore
import Testing

@testable import PlexJournal

@Suite("Journal: reminders")
struct ReminderJournalTests {
    @Test("due reminders page across shards from a position, in due, actor, name order, each once")
    func paging() async throws {
        let journal = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 2))
        // Ties on the due time across actors (in both shards) and names; one not due yet.
        let candidates = (0..<100).map { ActorID(typeName: "alarm", key: "k\($0)") }
        let actors =
            candidates.filter { journal.shardIndex(of: $0) == 0 }.prefix(3)
            + candidates.filter { journal.shardIndex(of: $0) == 1 }.prefix(3)
        var set: [Reminder] = []
        for index in 0..<12 {
            let actor = actors[actors.startIndex + index % 6]
            set.append(Reminder(actor: actor, name: "n\(index / 6)", due: Int64(100 + index % 3), payload: [1]))
        }
        set.append(Reminder(actor: ActorID(typeName: "alarm", key: "later"), name: "n", due: 500, payload: [2]))
        try await journal.append([], reminders: set.map { .set($0) })
        #expect(Set(set.map { journal.shardIndex(of: $0.actor) }) == [0, 1])

        let all = try await journal.dueReminders(at: 200)
        #expect(all.count == 12)
        #expect(all.map(\.due) == all.map(\.due).sorted())
        #expect(zip(all, all.dropFirst()).allSatisfy { $0.precedes($1) })
        var paged: [Reminder] = []
        var position: Reminder?
        while true {
            let page = try await journal.dueReminders(at: 200, after: position, limit: 5)
            paged += page
            guard page.count == 5 else { break }
            position = page.last
        }
        #expect(paged == all)
        #expect(try await journal.dueReminders(at: 200, after: all.last).isEmpty)
        #expect(try await journal.dueReminders(at: 500, after: all.last).map(\.due) == [500])
        await journal.close()
    }
}
