import Foundation
import Synchronization

/// A progress line on standard error for a command that takes a while: rewritten in place on a terminal,
/// a plain line at most once a second otherwise (so a log file stays short). Off unless standard error is a
/// terminal or `--progress` asked for it; standard output stays for the result alone.
final class Progress: Sendable {
    private let enabled: Bool
    private let terminal: Bool
    private let state = Mutex<(last: ContinuousClock.Instant?, shown: Bool)>((nil, false))

    /// - Parameter forced: `--progress`: show it even when standard error is not a terminal.
    init(forced: Bool) {
        terminal = isatty(STDERR_FILENO) == 1
        enabled = forced || terminal
    }

    /// Shows `text` (rate-limited, unless `force`).
    func update(_ text: @autoclosure () -> String, force: Bool = false) {
        guard enabled else { return }
        let now = ContinuousClock.now
        let due = state.withLock { state -> Bool in
            let interval: Duration = terminal ? .milliseconds(100) : .seconds(1)
            guard force || state.last.map({ now - $0 >= interval }) ?? true else { return false }
            state.last = now
            state.shown = true
            return true
        }
        guard due else { return }
        let line = terminal ? "\r\u{1B}[K\(text())" : "\(text())\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    /// Ends the line (on a terminal), so what follows starts on a new one.
    func finish() {
        guard enabled, terminal, state.withLock({ $0.shown }) else { return }
        FileHandle.standardError.write(Data("\n".utf8))
    }
}
