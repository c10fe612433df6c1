import PlexCore
import Testing

@Suite("Identities")
struct IdentityTests {
    @Test("actor ids parse type/key, keys may contain slashes")
    func actorIDs() throws {
        #expect(try ActorID(parsing: "counter/a/b") == ActorID(typeName: "counter", key: "a/b"))
        #expect(try ActorID(parsing: "counter/a/b").description == "counter/a/b")
        for bad in ["counter", "/k", "counter/", ""] {
            let error = #expect(throws: CallError.self) { _ = try ActorID(parsing: bad) }
            #expect(error?.code == .invalidRequest)
        }
    }

    @Test("node ids are validated")
    func nodeIDs() throws {
        #expect(try NodeID("node-1.a_b").rawValue == "node-1.a_b")
        for bad in ["", "has space", String(repeating: "x", count: 65), "ünï"] {
            #expect(throws: NodeError.self) { _ = try NodeID(bad) }
        }
    }

    @Test("the stable hash is fixed across processes and releases")
    func stableHash() {
        // Placement depends on these exact values (computed independently in Python from the definition):
        // changing them moves every actor of every cluster.
        #expect(StableHash.hash("node-1") == 0xe554_35ae_2194_ce5d)
        #expect(StableHash.hash("counter", "c1") == 0x0678_45fd_082c_0477)
        #expect(StableHash.hash("") == 0x1bbd_5c81_3c69_a8d7)
        #expect(StableHash.hash("ab", "c") != StableHash.hash("a", "bc"))
    }

    @Test("an actor's description hash equals the hash of its description (journal shards depend on it)")
    func descriptionHash() {
        for (type, key) in [("counter", "c1"), ("plex.workflow", "w-12345"), ("t", ""), ("ünï", "κλειδί/π")] {
            let id = ActorID(typeName: type, key: key)
            #expect(StableHash.hash(describing: id) == StableHash.hash(id.description))
        }
    }

    @Test("call errors keep unknown wire codes as remoteFailure")
    func callErrorCodes() {
        #expect(CallError.Code(rawValue: 2) == .nodeUnavailable)
        #expect(CallError.Code(rawValue: 999) == .remoteFailure)
        #expect(CallError.Code.overloaded.rawValue == 5)
    }
}
