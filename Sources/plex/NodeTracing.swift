import Logging
import OTel
import ServiceLifecycle
import Tracing

/// `plex node --otel`: the node's spans (actor turns, remote hops, journal commits, activity attempts, HTTP
/// requests) exported to an OpenTelemetry collector over OTLP/HTTP by swift-otel.
enum NodeTracing {
    /// Bootstraps the process's tracer; returns the exporter's service, to run in the node's service group
    /// (it flushes the last spans when the group stops).
    ///
    /// - Parameters:
    ///   - endpoint: The collector's base URL (`http://host:4318`); spans go to its `/v1/traces`. `nil`: the
    ///     `OTEL_EXPORTER_OTLP_ENDPOINT` variable, or `http://localhost:4318`. The other `OTEL_*` variables
    ///     (protocol, headers, sampler, batch delay) apply as the OpenTelemetry specification says.
    ///   - nodeID: Reported as the resource's `service.instance.id` when it is known.
    static func bootstrap(endpoint: String?, nodeID: String?) throws -> any Service {
        var configuration = OTel.Configuration.default
        configuration.serviceName = "plex"
        // swift-otel's own warnings go through the process's log handler (JSON with --log-format json).
        configuration.diagnosticLogger = .custom(Logger(label: "plex.otel"))
        if let nodeID { configuration.resourceAttributes["service.instance.id"] = nodeID }
        configuration.metrics.enabled = false  // metrics are Prometheus's, at /metrics
        configuration.logs.enabled = false
        configuration.traces.exporter = .otlp
        configuration.traces.otlpExporter.protocol = .httpProtobuf
        // A collector that is down must not hold a node's stop for long (the defaults wait 10 s, then 30 s).
        configuration.traces.otlpExporter.timeout = .seconds(2)
        configuration.traces.batchSpanProcessor.exportTimeout = .seconds(2)
        if let endpoint {
            let base = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
            configuration.traces.otlpExporter.endpoint = base.hasSuffix("/v1/traces") ? base : base + "/v1/traces"
        }
        let backend = try OTel.makeTracingBackend(configuration: configuration)
        InstrumentationSystem.bootstrap(backend.factory)
        return Exporter(service: backend.service)
    }

    /// The exporter's service under a name that says nothing of its settings (which may hold the collector's
    /// headers: credentials) when the service group logs it.
    struct Exporter: Service, CustomStringConvertible {
        let service: any Service
        var description: String { "OpenTelemetryExporter" }
        func run() async throws { try await service.run() }
    }
}
