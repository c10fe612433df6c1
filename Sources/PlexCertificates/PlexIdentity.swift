public import X509

/// Who a certificate of the cluster speaks for: a node (by its node id) or a client (by name, with a role).
///
/// It is written into the certificate's subject alternative names as URIs, so a peer learns it from the
/// certificate the cluster's CA signed, not from what the peer says: `plex://node/NODE-ID` for a node;
/// `plex://client/NAME` and `plex://role/ROLE` for a client.
public enum PlexIdentity: Sendable, Hashable, CustomStringConvertible {
    /// A node of the cluster, by its node id.
    case node(String)
    /// A client (a script, the CLI), by name, with what it may do.
    case client(String, role: ClientRole)

    /// What a client may do.
    public enum ClientRole: String, Sendable, Hashable, CaseIterable {
        /// Call actors, run workflows, read status.
        case caller
        /// What a caller may, and stop and remove nodes.
        case admin
    }

    public var description: String {
        switch self {
        case .node(let id): "node \(id)"
        case .client(let name, let role): "client \(name) (\(role.rawValue))"
        }
    }

    static let scheme = "plex://"

    /// The subject alternative names that carry the identity.
    var alternativeNames: [GeneralName] {
        switch self {
        case .node(let id): [.uniformResourceIdentifier(Self.scheme + "node/" + id)]
        case .client(let name, let role):
            [
                .uniformResourceIdentifier(Self.scheme + "client/" + name),
                .uniformResourceIdentifier(Self.scheme + "role/" + role.rawValue),
            ]
        }
    }

    /// The node id or the client's name: the certificate's common name, and its files' name.
    public var name: String {
        switch self {
        case .node(let id): id
        case .client(let name, _): name
        }
    }

    /// Checks that `name` can go into a certificate and come back unchanged (letters, digits, `-`, `_`, `.`,
    /// at most 128 bytes, as node ids are).
    /// - Throws: ``PlexCertificateError`` naming what is wrong.
    static func validate(_ name: String, as what: String) throws(PlexCertificateError) {
        guard !name.isEmpty, name.utf8.count <= 128,
            name.utf8.allSatisfy({ byte in
                (48...57).contains(byte) || (65...90).contains(byte) || (97...122).contains(byte)
                    || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
            })
        else {
            throw PlexCertificateError(
                "\(what) '\(name)' must be 1 to 128 letters, digits, '-', '_' or '.'")
        }
    }

    /// The identity `certificate` speaks for.
    /// - Throws: ``PlexCertificateError`` when it names none, or more than one, or a client without a role.
    public init(certificate: Certificate) throws(PlexCertificateError) {
        let names: SubjectAlternativeNames?
        do {
            names = try certificate.extensions.subjectAlternativeNames
        } catch {
            throw PlexCertificateError("the certificate's subject alternative names do not decode: \(error)")
        }
        var nodes: [String] = []
        var clients: [String] = []
        var roles: [String] = []
        for case .uniformResourceIdentifier(let uri) in names ?? SubjectAlternativeNames() {
            guard uri.hasPrefix(Self.scheme) else { continue }
            let rest = uri.dropFirst(Self.scheme.count)
            if rest.hasPrefix("node/") { nodes.append(String(rest.dropFirst(5))) }
            if rest.hasPrefix("client/") { clients.append(String(rest.dropFirst(7))) }
            if rest.hasPrefix("role/") { roles.append(String(rest.dropFirst(5))) }
        }
        switch (nodes.count, clients.count) {
        case (1, 0): self = .node(nodes[0])
        case (0, 1):
            guard roles.count == 1, let role = ClientRole(rawValue: roles[0]) else {
                throw PlexCertificateError("client certificate '\(clients[0])' carries no single known role")
            }
            self = .client(clients[0], role: role)
        default:
            throw PlexCertificateError(
                "the certificate names no single plex node or client (\(nodes.count) nodes, \(clients.count) clients)")
        }
    }
}
