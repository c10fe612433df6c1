internal import CoreMetrics
internal import PlexCore

/// A journal shard's swift-metrics instruments: how long a group commit takes (fsync included) and how many
/// entries it carries.
///
/// | metric | kind |
/// |---|---|
/// | `plex_journal_commit_duration_seconds` | histogram |
/// | `plex_journal_commit_entries` | histogram |
struct JournalMetrics: Sendable {
    let commitDuration = Timer(label: "plex_journal_commit_duration_seconds", preferredDisplayUnit: .seconds)
    let commitEntries = Recorder(label: "plex_journal_commit_entries")

    /// A group of `entries` committed in `elapsed`.
    func committed(entries: Int, elapsed: Duration) {
        commitDuration.recordNanoseconds(Int64(clamping: elapsed.clampedNanoseconds))
        commitEntries.record(entries)
    }
}
