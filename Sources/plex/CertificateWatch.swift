import Foundation
import Logging
import PlexSpaces
import UnixSignals

/// Keeps a node's TLS certificate current: reloads its files on `SIGHUP` (connections opened after it use the
/// new certificate; open ones keep theirs), and warns in the log when the certificate expires within 14 days —
/// at start, after each reload, and every 12 hours. A node without TLS takes `SIGHUP` too, and logs that there
/// is nothing to reload (the signal's default would end the process).
struct CertificateWatch {
    let tls: TransportTLS?
    let logger: Logger

    /// Runs until its task is cancelled.
    func run() async {
        warnIfExpiring()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await _ in await UnixSignalsSequence(trapping: .sighup) {
                    reload()
                }
            }
            group.addTask {
                while (try? await Task.sleep(for: .seconds(12 * 3600))) != nil { warnIfExpiring() }
            }
            await group.next()
            group.cancelAll()
        }
    }

    private func reload() {
        guard let tls else {
            logger.notice("SIGHUP: nothing to reload (this node runs without TLS)")
            return
        }
        do {
            try tls.reload()
            logger.notice(
                "reloaded the TLS certificate files (SIGHUP); new connections use them",
                metadata: ["tls.identity": "\(tls.identity)", "tls.not_valid_after": "\(tls.notValidAfter)"])
            warnIfExpiring()
        } catch {
            logger.error(
                "cannot reload the TLS certificate files (SIGHUP); keeping the ones loaded",
                metadata: ["error": "\(error.message)"])
        }
    }

    private func warnIfExpiring() {
        if let warning = tls?.expiryWarning() { logger.warning("\(warning)") }
    }
}
