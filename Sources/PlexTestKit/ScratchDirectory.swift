internal import Foundation
internal import Synchronization

/// A directory for this process's scratch files (journals, data directories, certificates): `PREFIX-PID-UUID` in
/// the temporary directory, created on first use and removed with everything in it when the process exits, so
/// that test and benchmark runs leave nothing behind in `/tmp`. (A process that crashes or is killed leaves it.)
///
/// - Parameter prefix: The start of the directory's name, e.g. `plex-journal-tests`.
/// - Returns: The directory's path; the same path for the same prefix in one process.
public func processScratchDirectory(_ prefix: String) -> String {
    let (root, first) = scratchRoots.withLock { roots -> (String, Bool) in
        if let root = roots[prefix] { return (root, false) }
        // A fresh name: nothing another process (or a container sharing /tmp) made can be in it.
        let root = FileManager.default.temporaryDirectory.path + "/\(prefix)-\(getpid())-\(UUID())"
        defer { roots[prefix] = root }
        return (root, roots.isEmpty)
    }
    try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    if first { atexit { removeScratchRoots() } }
    return root
}

/// The scratch directories made so far, by prefix.
private let scratchRoots = Mutex<[String: String]>([:])

private func removeScratchRoots() {
    for root in scratchRoots.withLock({ Array($0.values) }) { try? FileManager.default.removeItem(atPath: root) }
}
