import Foundation
import PlexCore
import Testing

@testable import PlexJournal

@Suite("Journal shards")
struct ShardTests {
    let actors = (0..<40).map { ActorID(typeName: "counter", key: "s\($0)") }

    @Test("actors spread over the shards; the count is kept across reopening whatever the configuration says")
    func spreadAndKept() async throws {
        let path = temporaryJournalPath()
        let journal = try await Journal.open(path: path, configuration: .init(shards: 2))
        for actor in actors { try await journal.append([entry(actor, 1, key: "k")]) }
        let perShard = try await journal.shards.asyncMap { shard in
            try await shard.perform(filing: .all) { connection throws(JournalError) in
                let statement = try connection.statement("SELECT COUNT(*) FROM entries")
                return try statement.step() ? Int(statement.int64(0)) : 0
            }
        }
        #expect(perShard.count == 2 && perShard.allSatisfy { $0 > 0 } && perShard.reduce(0, +) == actors.count)
        #expect(try await journal.statistics().entries == actors.count)
        #expect(try await journal.heldActors().count == actors.count)
        await journal.close()

        let reopened = try await Journal.open(path: path, configuration: .init(shards: 4))
        #expect(reopened.shards.count == 2)
        for actor in actors {
            #expect(try await reopened.entries(for: actor).map(\.sequence) == [1])
            #expect(try await reopened.message(for: actor, idempotencyKey: "k", notBefore: 0) != nil)
        }
        await reopened.close()
    }

    @Test("a missing shard file is refused, naming it; nothing is recreated empty")
    func missingShard() async throws {
        let path = temporaryJournalPath()
        let journal = try await Journal.open(path: path, configuration: .init(shards: 2))
        for actor in actors { try await journal.append([entry(actor, 1)]) }
        await journal.close()
        let shardFile = Journal.shardPath(path, 1)
        try FileManager.default.removeItem(atPath: shardFile)
        let error = await #expect(throws: JournalError.self) {
            _ = try await Journal.open(path: path, configuration: .init(shards: 2))
        }
        #expect(error?.code == .open)
        #expect(error?.path == shardFile)
        #expect(!FileManager.default.fileExists(atPath: shardFile))
    }

    @Test("a journal written before sharding stays one shard")
    func unsharded() async throws {
        let path = temporaryJournalPath()
        let old = try await Journal.open(path: path, configuration: .init(shards: 1))
        try await old.append([entry(counterA, 1)])
        await old.close()
        let reopened = try await Journal.open(path: path, configuration: .init(shards: 2))
        #expect(reopened.shards.count == 1)
        #expect(try await reopened.entries(for: counterA).count == 1)
        await reopened.close()
    }

    @Test("entries of actors in different shards in one append all commit, or the write fails")
    func mixedAppend() async throws {
        let journal = try await Journal.open(path: temporaryJournalPath(), configuration: .init(shards: 2))
        try await journal.append(actors.map { entry($0, 1) })
        for actor in actors { #expect(try await journal.lastSequence(for: actor) == 1) }
        await #expect(throws: JournalError.self) { try await journal.append(actors.map { entry($0, 1) }) }
        await journal.close()
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
