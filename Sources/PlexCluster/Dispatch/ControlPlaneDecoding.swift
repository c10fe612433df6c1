package import PlexWire

/// Every control-plane body decoder a node runs on frames from its peers, in one place for the fuzzer
/// (`plex-fuzz control`): gossip, admin requests and replies, handoff requests and replies.
package enum ControlPlaneDecoding {
    /// Decodes `frame`'s body as each control-plane message; returns how many decoded. Never traps: a body that
    /// does not decode is a thrown, typed error inside.
    package static func decodeEveryWay(_ frame: Wire.Frame) -> Int {
        var decoded = 0
        if (try? Gossip(frame: frame)) != nil { decoded += 1 }
        if (try? AdminRequest(frame: frame)) != nil { decoded += 1 }
        if (try? AdminReply(frame: frame)) != nil { decoded += 1 }
        if (try? HandoffRequest(frame: frame)) != nil { decoded += 1 }
        if (try? HandoffReply(frame: frame)) != nil { decoded += 1 }
        return decoded
    }
}
