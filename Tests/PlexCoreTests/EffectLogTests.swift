import PlexCore
import Testing

func context(_ effects: EffectLog?) -> ActorContext {
    var context = ActorContext(
        id: ActorID(typeName: "shop", key: "s"), nodeID: NodeID(unchecked: "n"), callID: nil, router: NoRouter())
    context.effects = effects
    return context
}

struct NoRouter: ActorCallRouter {
    func ask<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request, options: CallOptions)
        async throws -> A.Response
    { throw CallError(.nodeUnavailable, "none") }
    func tell<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request) async throws {}
}

@Suite("Effect log: journal format")
struct EffectLogFormatTests {
    /// `[Effect]` as the code before failures were journaled wrote it (BinaryMessageCodec): "charge" → 42,
    /// "plex.random" → 7. Entries written then must decode for ever.
    static let legacyBlob: [UInt8] = [
        0x0A, 0x37, 0x09, 0x17, 0x04, 0x6E, 0x61, 0x6D, 0x65, 0x07, 0x06, 0x63, 0x68, 0x61, 0x72, 0x67, 0x65, 0x05,
        0x76, 0x61, 0x6C, 0x75, 0x65, 0x08, 0x02, 0x03, 0x54, 0x09, 0x1C, 0x04, 0x6E, 0x61, 0x6D, 0x65, 0x07, 0x0B,
        0x70, 0x6C, 0x65, 0x78, 0x2E, 0x72, 0x61, 0x6E, 0x64, 0x6F, 0x6D, 0x05, 0x76, 0x61, 0x6C, 0x75, 0x65, 0x08,
        0x02, 0x03, 0x0E,
    ]

    @Test("an effects blob in the original format decodes")
    func legacyFormat() throws {
        let effects = try EffectLog.decode(Self.legacyBlob)
        #expect(effects.map(\.name) == ["charge", "plex.random"])
        #expect(try BinaryMessageCodec().decode(Int.self, from: effects[0].value) == 42)
        #expect(try BinaryMessageCodec().decode(Int.self, from: effects[1].value) == 7)
    }

    @Test("effects that returned are still written in the original format, so older readers read them")
    func unchangedWhenNothingThrew() async throws {
        let log = EffectLog()
        let context = context(log)
        _ = try await context.run("charge") { 42 }
        _ = try await context.run("plex.random") { 7 }
        #expect(try log.encoded() == Self.legacyBlob)
    }
}
