internal import FoundationEssentials
internal import PlexSpaces

#if canImport(Glibc)
    import Glibc
#endif

/// The file operations the examples share, each durable once it returns (flushed to the disk), so what an
/// activity or a stand-in service wrote survives a crash of the process that wrote it.
enum DurableFiles {
    /// Replaces the file at `path` with `bytes`: written to a temporary file, flushed, renamed over it, so a crash
    /// leaves the old file or the new one, never a part.
    /// - Throws: ``ActorFailure`` `io` (retryable).
    static func write(_ bytes: [UInt8], to path: String) throws {
        let temporary = path + ".plex-tmp"
        guard let handle = fopen(temporary, "w") else {
            throw ActorFailure(code: "io", message: "cannot write \(path)")
        }
        let written = bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, handle) }
        fflush(handle)
        fsync(fileno(handle))
        fclose(handle)
        guard written == bytes.count, rename(temporary, path) == 0 else {
            throw ActorFailure(code: "io", message: "cannot write \(path)")
        }
    }

    /// Appends `line` to the file at `path` (created if missing).
    /// - Throws: ``ActorFailure`` `io` (retryable).
    static func append(_ line: String, to path: String) throws {
        guard let handle = fopen(path, "a") else { throw ActorFailure(code: "io", message: "cannot open \(path)") }
        defer { fclose(handle) }
        guard fputs(line, handle) >= 0, fflush(handle) == 0, fsync(fileno(handle)) == 0 else {
            throw ActorFailure(code: "io", message: "cannot append to \(path)")
        }
    }

    /// `bytes` in lower-case hex (a digest's usual spelling).
    static func hex<Bytes: Sequence<UInt8>>(_ bytes: Bytes) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }
}
