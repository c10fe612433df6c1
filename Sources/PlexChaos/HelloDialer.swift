internal import Foundation
public import PlexTestKit
internal import PlexWire
internal import SwiftProtobuf

/// Names the dialer of a PlexSpaces connection from the first frame it sends, the handshake's hello, for a
/// ``TCPProxy`` that cuts one node's connections alone.
///
/// A node's hello carries its node id; a client's (the CLI, the chaos run's callers) is named `client`.
/// Anything else is ``TCPProxy/Identification/unknown``.
public enum HelloDialer {
    /// The name for connections of clients (not members).
    public static let client = "client"

    /// What `bytes`, the start of a connection, say about who dialled.
    @Sendable
    public static func identify(_ bytes: [UInt8]) -> TCPProxy.Identification {
        let prefix = Wire.lengthPrefixSize
        guard bytes.count >= prefix else { return .needMoreBytes }
        let length = bytes[0..<prefix].reduce(0) { $0 << 8 | Int($1) }
        guard length >= Wire.headerSize, length + prefix <= TCPProxy.maximumIdentificationBytes else {
            return .unknown
        }
        guard bytes.count >= prefix + length else { return .needMoreBytes }
        guard bytes[prefix] == Wire.protocolVersion, bytes[prefix + 1] == Wire.FrameKind.handshake.rawValue,
            let handshake = try? Plexspaces_V1_Handshake(
                serializedBytes: Array(bytes[(prefix + Wire.headerSize)..<(prefix + length)])),
            case .hello(let hello)? = handshake.step
        else { return .unknown }
        if hello.role == .client { return .dialer(client) }
        return hello.nodeID.isEmpty ? .unknown : .dialer(hello.nodeID)
    }
}
