internal import Synchronization

/// The activities a node can run, by name.
final class ActivityRegistry: Sendable {
    private let activities = Mutex<[String: any Activity]>([:])

    func register(_ activity: any Activity) {
        activities.withLock { $0[type(of: activity).name] = activity }
    }

    func activity(named name: String) -> (any Activity)? {
        activities.withLock { $0[name] }
    }
}
