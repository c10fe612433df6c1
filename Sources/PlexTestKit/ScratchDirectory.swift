internal import Foundation
internal import Synchronization

/// A directory for this process's scratch files (journals, data directories, certificates): `PREFIX-PID` in the
/// temporary directory, created on first use and removed with everything in it when the process exits, so that
/// test and benchmark runs leave nothing behind in `/tmp`. (A process that crashes or is killed leaves it.)
///
/// - Parameter prefix: The directory's name before the process id, e.g. `plex-journal-tests`.
/// - Returns: The directory's path; the same path for the same prefix in one process.
public func processScratchDirectory(_ prefix: String) -> String {
    let root = FileManager.default.temporaryDirectory.path + "/\(prefix)-\(getpid())"
    let first = scratchRoots.withLock { roots -> Bool in
        defer { roots.insert(root) }
        return roots.isEmpty
    }
    try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    if first { atexit { removeScratchRoots() } }
    return root
}

private let scratchRoots = Mutex<Set<String>>([])

private func removeScratchRoots() {
    for root in scratchRoots.withLock({ $0 }) { try? FileManager.default.removeItem(atPath: root) }
}
