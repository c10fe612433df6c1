internal import PlexCore

#if canImport(Glibc)
    internal import Glibc
#elseif canImport(Musl)
    internal import Musl
#elseif canImport(Darwin)
    internal import Darwin
#endif

/// An exclusive lock on a node's data directory (`flock` on `<dir>/LOCK`), held while the node runs.
///
/// Two processes on one data directory would be one node id twice, with two incarnations fighting; the
/// second is refused with a clear error instead. The lock dies with the process, so `kill -9` leaves nothing
/// to clean up. Tools that read a node's files (`plex journal`) take it too: a journal is written by one process
/// at a time (its SQLite files are held in exclusive locking mode), so they refuse a running node's directory.
public final class DataDirectoryLock: Sendable {
    private let descriptor: Int32

    /// Takes the lock.
    /// - Throws: ``NodeError`` `dataDirectory` when another process holds it or the file cannot be opened.
    public init(directory: String) throws {
        let path = directory + "/LOCK"
        let fd = open(path, O_CREAT | O_RDWR | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw NodeError(.dataDirectory, "cannot open \(path): errno \(errno)")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            var buffer = [UInt8](repeating: 0, count: 32)
            let count = pread(fd, &buffer, buffer.count, 0)
            let holder = count > 0 ? String(decoding: buffer.prefix(count), as: UTF8.self) : "another process"
            close(fd)
            throw NodeError(
                .dataDirectory,
                "data directory \(directory) is in use by another process: a node or `plex journal` (pid \(holder.trimmingCharacters()))"
            )
        }
        let pid = Array("\(getpid())\n".utf8)
        _ = ftruncate(fd, 0)
        _ = pwrite(fd, pid, pid.count, 0)
        self.descriptor = fd
    }

    /// Releases the lock when the last reference goes (the node stopped, or failed to start).
    deinit {
        flock(descriptor, LOCK_UN)
        close(descriptor)
    }
}

extension String {
    fileprivate func trimmingCharacters() -> String {
        var text = self
        while let last = text.last, last.isWhitespace || last == "\0" { text.removeLast() }
        return text
    }
}
