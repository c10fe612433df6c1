import PlexCertificates
import PlexCore
import PlexTransport
import Testing

@testable import PlexCluster

/// Who may make which admin request: over TLS, a client's certificate role decides.
@Suite("Admin requests by role")
struct AdminPermissionTests {
    static func peer(_ certified: PlexIdentity?, role: PeerRole = .client) -> PeerIdentity {
        PeerIdentity(
            role: role, nodeID: NodeID(unchecked: "cli"), incarnation: 0, listenAddress: "", certified: certified)
    }

    @Test("a caller reads the status and may not stop or remove a node; the refusal is permissionDenied, naming it")
    func caller() {
        let caller = Self.peer(.client("script", role: .caller))
        #expect(AdminCommands.refusal(of: .status, from: caller) == nil)
        for request in [AdminRequest.leave, .remove(NodeID(unchecked: "n2"), force: false)] {
            let refusal = AdminCommands.refusal(of: request, from: caller)
            #expect(refusal?.code == .permissionDenied, "\(request)")
            #expect(refusal?.message.contains("client script has the caller role") == true)
        }
    }

    @Test("an admin client, a node's certificate and a cluster without TLS may make every request")
    func others() {
        let peers = [
            Self.peer(.client("ops", role: .admin)), Self.peer(.node("n1")), Self.peer(nil),
            Self.peer(.node("n3"), role: .node),
        ]
        for peer in peers {
            for request in [AdminRequest.status, .leave, .remove(NodeID(unchecked: "n2"), force: true)] {
                #expect(AdminCommands.refusal(of: request, from: peer) == nil, "\(peer) \(request)")
            }
        }
    }
}

extension AdminPermissionTests {
    @Test("without TLS, a client that proved the caller secret is a caller")
    func callerSecret() {
        var peer = Self.peer(nil)
        peer.credential = .caller
        #expect(peer.isCallerOnly)
        #expect(AdminCommands.refusal(of: .status, from: peer) == nil)
        #expect(AdminCommands.refusal(of: .leave, from: peer)?.message.contains("proved the caller secret") == true)
    }
}
