import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import PlexExamples
import PlexGateway
import PlexSpaces
import PlexTestKit
import Prometheus
import ServiceLifecycle
import Testing

/// Sleeps as long as it is asked to: for timeouts.
struct Sleeper: VirtualActor {
    static let typeName = "sleeper"
    struct Request: Codable, Sendable { var milliseconds: Int }
    init() {}
    func handle(_ request: Request, state: inout NoState, context: ActorContext) async throws -> Int {
        try await Task.sleep(for: .milliseconds(request.milliseconds))
        return request.milliseconds
    }
}

/// The example ledger under a type name no other test calls: the metrics registry is the process's, and tests
/// that count this type's calls exactly must not see other suites' ledger calls made meanwhile.
struct MeteredLedger: VirtualActor {
    static let typeName = "metered-ledger"
    static let durability = Ledger.durability
    init() {}
    func handle(_ request: Ledger.Request, state: inout Ledger.State, context: ActorContext) async throws
        -> Ledger.Reply
    {
        try await Ledger().handle(request, state: &state, context: context)
    }
}

/// One answer of the gateway, with its body parsed as JSON.
struct Answer: Sendable {
    var status: HTTPResponse.Status
    var headers: HTTPFields
    var text: String

    /// The body as a JSON object.
    var object: [String: any Sendable] {
        get throws {
            let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8), options: [.fragmentsAllowed])
            return try #require(parsed as? [String: any Sendable], "not a JSON object: \(text)")
        }
    }

    /// The body as a JSON array.
    var array: [[String: any Sendable]] {
        get throws {
            let parsed = try JSONSerialization.jsonObject(with: Data(text.utf8))
            return try #require(parsed as? [[String: any Sendable]], "not a JSON array: \(text)")
        }
    }

    /// `error.code` of an error answer.
    var errorCode: String? { (try? object["error"] as? [String: any Sendable])?["code"] as? String }
    /// `error.message` of an error answer.
    var errorMessage: String { ((try? object["error"] as? [String: any Sendable])?["message"] as? String) ?? "" }
}

extension TestClientProtocol {
    /// Sends a request and returns the answer.
    func send(
        _ method: HTTPRequest.Method, _ uri: String, body: String? = nil, headers: HTTPFields = [:]
    ) async throws -> Answer {
        try await execute(uri: uri, method: method, headers: headers, body: body.map { ByteBuffer(string: $0) }) {
            Answer(status: $0.status, headers: $0.headers, text: String(buffer: $0.body))
        }
    }
}

/// A cluster of `nodes` in-process nodes running the examples and ``Sleeper``, with a gateway on node 0 under
/// HummingbirdTesting (`.router` unless `live`: a real HTTP server on 127.0.0.1 and a port the system picks).
func withGateway(
    nodes: Int = 2, transport: TestTransport = .loopbackTCP,
    setup: @escaping @Sendable (inout NodeConfiguration) -> Void = { _ in },
    configuration: GatewayConfiguration = GatewayConfiguration(), metrics: PrometheusCollectorRegistry? = nil,
    live: Bool = false,
    _ body: @Sendable @escaping (TestCluster, any TestClientProtocol) async throws -> Void
) async throws {
    try await withTestCluster(
        nodes: nodes, transport: transport, setup: setup,
        register: { node in
            node.registerExamples()
            node.register(Sleeper.self)
            node.register(MeteredLedger.self)
        }
    ) { cluster in
        let gateway = try Gateway(node: cluster.node(0), configuration: configuration, metrics: metrics)
        try await gateway.application().test(live ? .live : .router) { client in try await body(cluster, client) }
    }
}

/// A one-node cluster (the examples and ``Sleeper`` registered) whose gateway listener (the main one, or the h2c
/// one with `http2`) runs in a service group on a real socket until `body` returns and the group has ended:
/// `body` gets the node, the bound port and the group, to stop it gracefully.
func withStoppableGateway(
    configuration: GatewayConfiguration, http2: Bool = false,
    _ body: @Sendable @escaping (PlexNode, Int, ServiceGroup) async throws -> Void
) async throws {
    try await withRunningGateway(configuration: configuration, http2: http2) { _, node, port, group in
        try await body(node, port, group)
    }
}

/// ``withStoppableGateway(configuration:http2:_:)`` whose `body` also gets the gateway.
func withRunningGateway(
    configuration: GatewayConfiguration, http2: Bool = false,
    _ body: @Sendable @escaping (Gateway, PlexNode, Int, ServiceGroup) async throws -> Void
) async throws {
    try await withTestCluster(
        nodes: 1, transport: .loopbackTCP,
        register: {
            $0.registerExamples()
            $0.register(Sleeper.self)
        }
    ) { cluster in
        let node = cluster.node(0)
        let gateway = try Gateway(node: node, configuration: configuration)
        let (ports, bound) = AsyncStream.makeStream(of: Int.self)
        let service: any Service
        if http2 {
            let listener = gateway.plaintextHTTP2Application(onRunning: { bound.yield($0) })
            service = try #require(listener, "the configuration has an h2c listener")
        } else {
            service = try gateway.application(onRunning: { bound.yield($0) })
        }
        let group = ServiceGroup(configuration: .init(services: [service], logger: Logger(label: "test")))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var iterator = ports.makeAsyncIterator()
            let port = try #require(await iterator.next())
            try await body(gateway, node, port, group)
            try await tasks.waitForAll()
        }
    }
}
