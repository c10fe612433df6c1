internal import PlexCore
internal import Synchronization

/// The activities a node can run, by name.
final class ActivityRegistry: Sendable {
    /// A registered activity, and a way to run it on encoded input (for attempts sent by other nodes).
    struct Entry: Sendable {
        let activity: any Activity
        let runEncoded: @Sendable ([UInt8], ActivityContext) async throws -> [UInt8]
    }

    private let entries = Mutex<[String: Entry]>([:])

    func register<A: Activity>(_ activity: A) {
        let entry = Entry(activity: activity) { input, context in
            let value = try BinaryMessageCodec().decode(A.Input.self, from: input)
            return try BinaryMessageCodec().encode(try await activity.run(value, context: context))
        }
        entries.withLock { $0[A.name] = entry }
    }

    func activity(named name: String) -> (any Activity)? {
        entries.withLock { $0[name]?.activity }
    }

    func entry(named name: String) -> Entry? {
        entries.withLock { $0[name] }
    }
}
