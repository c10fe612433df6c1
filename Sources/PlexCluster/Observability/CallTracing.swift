internal import PlexCore
internal import PlexJournal
internal import PlexWire
internal import Tracing

/// A node's spans, through swift-distributed-tracing: one per actor turn (`actor TYPE`, kind server), per call
/// sent to another node (`call TYPE`, kind client) and per journal commit a turn waits for (`journal commit`).
/// The trace context crosses nodes inside the call frame (``Wire/CallBody/trace``), so a call that goes
/// through several nodes is one trace. `nil` (see ``init(tracer:nodeID:)``) when nothing traces: the call path
/// then pays one `nil` check.
struct CallTracing: Sendable {
    let tracer: any Tracer
    let nodeID: NodeID

    /// The tracing of a node configured with `tracer`: it, or the process's bootstrapped tracer; `nil` if
    /// neither (the no-op tracer).
    init?(tracer: (any Tracer)?, nodeID: NodeID) {
        let chosen = tracer ?? InstrumentationSystem.tracer
        if chosen is NoOpTracer { return nil }
        self.tracer = chosen
        self.nodeID = nodeID
    }

    /// Runs `operation` in a client span for a call to `id` on `peer`, handing it the span's context as wire
    /// fields (for ``Wire/CallBody/trace``).
    func hop<T>(
        to id: ActorID, peer: NodeID?, isolation: isolated (any Actor)? = #isolation,
        _ operation: ([String: String]) async throws -> T
    ) async rethrows -> T {
        let span = tracer.startAnySpan(
            "call \(id.typeName)", context: ServiceContext.current ?? .topLevel, ofKind: .client)
        span.attributes["plex.actor.type"] = id.typeName
        span.attributes["plex.actor.key"] = id.key
        span.attributes["plex.node.id"] = nodeID.rawValue
        if let peer { span.attributes["plex.peer.node.id"] = peer.rawValue }
        defer { span.end() }
        var fields: [String: String] = [:]
        tracer.inject(span.context, into: &fields, using: DictionaryInjector())
        do {
            return try await operation(fields)
        } catch {
            span.recordError(error)
            span.setStatus(SpanStatus(code: .error))
            throw error
        }
    }

    /// The context a call frame's trace fields carry (`nil` for none).
    func context(from fields: [String: String]) -> ServiceContext? {
        guard !fields.isEmpty else { return nil }
        var context = ServiceContext.topLevel
        tracer.extract(fields, into: &context, using: DictionaryExtractor())
        return context
    }

    /// Starts the span of a turn of `id`, under `parent` (a caller's context from the wire) or the task's
    /// current context.
    func startTurn(_ id: ActorID, callID: CallID, parent: ServiceContext?) -> any Span {
        let span = tracer.startAnySpan(
            "actor \(id.typeName)", context: parent ?? ServiceContext.current ?? .topLevel, ofKind: .server)
        span.attributes["plex.actor.type"] = id.typeName
        span.attributes["plex.actor.key"] = id.key
        span.attributes["plex.call.id"] = "\(callID)"
        span.attributes["plex.node.id"] = nodeID.rawValue
        return span
    }

    /// Starts a span for the commit of `write` under `context`, ended when it is durable.
    func commit(_ write: PendingWrite, of id: ActorID, context: ServiceContext) {
        let span = tracer.startAnySpan("journal commit", context: context, ofKind: .internal)
        span.attributes["plex.actor.type"] = id.typeName
        span.attributes["plex.actor.key"] = id.key
        span.attributes["plex.node.id"] = nodeID.rawValue
        write.onComplete { result in
            if case .failure(let error) = result {
                span.recordError(error)
                span.setStatus(SpanStatus(code: .error))
            }
            span.end()
        }
    }
}

/// Writes trace fields into a call frame's dictionary.
struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) { carrier[key] = value }
}

/// Reads trace fields from a call frame's dictionary.
struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? { carrier[key] }
}
