internal import CoreMetrics
internal import PlexCore
internal import PlexJournal

/// The swift-metrics instruments of one actor type on this node, made when the type is registered so that a
/// message only updates them (no lookup by label on its path). Labels are the type and the outcome, never an
/// actor's key: their number stays bounded by the registered types. They report to the process's
/// `MetricsSystem` (the `plex` binary bootstraps Prometheus; a library user picks any backend, or none). With
/// no backend and no reader of the call log, a turn skips them (``isActive``): measured, the instruments and
/// the timing cost a local ask 10-20 % even when they report nowhere.
///
/// | metric | kind | what |
/// |---|---|---|
/// | `plex_actor_calls_total{type,outcome}` | counter | messages handled, by outcome (`ok` or a ``CallError`` code) |
/// | `plex_actor_call_duration_seconds{type}` | histogram | a message's turn: activation, replay and handler |
/// | `plex_actor_calls_in_flight{type}` | gauge | messages whose turn runs now |
/// | `plex_actor_mailbox_depth{type}` | histogram | messages waiting behind one as its turn starts |
/// | `plex_actor_activations_total{type}`, `plex_actor_deactivations_total{type}` | counter | activations begun and ended |
final class ActorMetrics: Sendable {
    /// Index 0 counts `ok`; index *n* the messages that failed with the code whose wire number is *n*.
    private let calls: [Counter]
    private let duration: Timer
    private let inFlight: Meter
    private let mailboxDepth: Recorder
    let activated: Counter
    let deactivated: Counter
    /// The node's slowest and failed turns, for the dashboard.
    let callLog: CallLog?
    /// Whether the instruments report anywhere: `false` when `MetricsSystem.factory` (the bootstrapped
    /// backend, or a task-local one bound with `withMetricsFactory`) was swift-metrics' no-op handler as the type
    /// was registered, the time its instruments were made (so they would report nowhere).
    let isRecording: Bool

    /// Whether a turn is timed and counted: the instruments report somewhere, or the call log is read.
    var isActive: Bool { isRecording || callLog?.isEnabled == true }

    init(typeName: String, callLog: CallLog? = nil) {
        self.callLog = callLog
        self.isRecording = !(MetricsSystem.factory is NOOPMetricsHandler)
        let type = [("type", typeName)]
        var calls = [Counter(label: "plex_actor_calls_total", dimensions: type + [("outcome", "ok")])]
        for raw in UInt16(1)...10 {
            let outcome = CallError.Code(rawValue: raw).description
            calls.append(Counter(label: "plex_actor_calls_total", dimensions: type + [("outcome", outcome)]))
        }
        self.calls = calls
        duration = Timer(label: "plex_actor_call_duration_seconds", dimensions: type, preferredDisplayUnit: .seconds)
        inFlight = Meter(label: "plex_actor_calls_in_flight", dimensions: type)
        mailboxDepth = Recorder(label: "plex_actor_mailbox_depth", dimensions: type)
        activated = Counter(label: "plex_actor_activations_total", dimensions: type)
        deactivated = Counter(label: "plex_actor_deactivations_total", dimensions: type)
    }

    /// A message's turn starts, with `waiting` messages queued behind it.
    func turnStarted(waiting: @autoclosure () -> Int) {
        guard isRecording else { return }
        inFlight.increment()
        mailboxDepth.record(waiting())
    }

    /// The turn of `actor` that started at `start` (monotonic nanoseconds) ended with `error`, or none for a
    /// reply. A reply that waits for `write` (a durable actor's entry) is counted once the entry is durable:
    /// `ok`, or `storageFailure` if it could not be kept (its caller hears that, not the reply).
    func turnEnded(
        _ actor: ActorID, since start: UInt64, now: UInt64, error: CallError?, committing write: PendingWrite? = nil
    ) {
        if isRecording {
            inFlight.decrement()
            duration.recordNanoseconds(Int64(truncatingIfNeeded: now &- start))
        }
        guard error == nil, let write else { return outcome(actor, since: start, now: now, error: error) }
        write.onComplete { [self] result in
            guard case .failure(let failure) = result else { return outcome(actor, since: start, now: now, error: nil) }
            outcome(actor, since: start, now: now, error: OutputGate.notJournaled(actor, failure))
        }
    }

    private func outcome(_ actor: ActorID, since start: UInt64, now: UInt64, error: CallError?) {
        if isRecording {
            let index = error.map { Int($0.code.rawValue) } ?? 0
            calls[index < calls.count ? index : Int(CallError.Code.remoteFailure.rawValue)].increment()
        }
        if let callLog, callLog.isEnabled { callLog.record(actor, nanoseconds: now &- start, now: now, error: error) }
    }

    /// A message refused before its turn because the mailbox was full: counted as `overloaded`.
    func refused() { calls[Int(CallError.Code.overloaded.rawValue)].increment() }

    /// The turn that started ended without an outcome: the activation went away and the message is tried again.
    func turnRetried() { if isRecording { inFlight.decrement() } }
}
