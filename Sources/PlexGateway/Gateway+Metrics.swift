internal import HTTPTypes
internal import Hummingbird
internal import Metrics
internal import NIOCore
internal import PlexCluster
public import Prometheus

/// What `/metrics` reads off the node when it is scraped, rather than keeping up to date on every change:
/// members by state, this node's activations, and the journal's size on disk.
///
/// | metric | kind |
/// |---|---|
/// | `plex_cluster_members{state}` | gauge: members this node sees `up`, `unreachable`, `leaving`, `left`, `removed` |
/// | `plex_activations` | gauge: activations on this node |
/// | `plex_journal_size_bytes` | gauge: the journal's files |
struct ScrapedGauges: Sendable {
    static let states = ["up", "unreachable", "leaving", "left", "removed"]
    let members: [String: Metrics.Gauge]
    let activations = Metrics.Gauge(label: "plex_activations")
    let journalBytes = Metrics.Gauge(label: "plex_journal_size_bytes")

    init() {
        var members: [String: Metrics.Gauge] = [:]
        for state in Self.states {
            members[state] = Metrics.Gauge(label: "plex_cluster_members", dimensions: [("state", state)])
        }
        self.members = members
    }

    func update(from node: PlexNode) {
        let status = node.clusterStatus
        for (state, gauge) in members { gauge.record(status.members.filter { $0.state == state }.count) }
        let own = status.members.first { $0.nodeID == node.nodeID.rawValue }
        activations.record(Int(own?.activations ?? 0))
        journalBytes.record(node.journal.bytesOnDisk)
    }
}

extension Gateway {
    /// `GET /metrics`: every swift-metrics instrument of the process in the Prometheus text format.
    func metricsResponse() throws -> Response {
        guard let metrics else {
            throw GatewayError(
                .notFound, code: "notFound",
                "this gateway exports no metrics: give it the PrometheusCollectorRegistry the process reports to")
        }
        gauges.update(from: node)
        var buffer: [UInt8] = []
        buffer.reserveCapacity(16 << 10)
        metrics.emit(into: &buffer)
        return Response(
            status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
            body: ResponseBody(byteBuffer: ByteBuffer(bytes: buffer)))
    }
}

extension PrometheusMetricsFactory {
    /// A factory for `registry` with buckets that fit an actor runtime: durations from 25 µs to 10 s (a call
    /// on one node takes tens of microseconds), and counts (mailbox depth, commit sizes) in powers of two.
    public static func plex(registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(25), .microseconds(50), .microseconds(100), .microseconds(250), .microseconds(500),
            .milliseconds(1), .milliseconds(2.5), .milliseconds(5), .milliseconds(10), .milliseconds(25),
            .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500), .seconds(1),
            .seconds(2.5), .seconds(5), .seconds(10),
        ]
        factory.defaultValueHistogramBuckets = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384]
        return factory
    }
}
