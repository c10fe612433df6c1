import Foundation
import PlexCore
import Synchronization
import Testing

/// Records the calls and tells sent through it.
final class RecordingRouter: ActorCallRouter {
    let sent = Mutex<[ActorID]>([])

    func ask<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request, options: CallOptions)
        async throws -> A.Response
    {
        sent.withLock { $0.append(id) }
        throw CallError(.nodeUnavailable, "recorded only")
    }

    func tell<A: VirtualActor>(_ type: A.Type, _ id: ActorID, _ request: A.Request) async throws {
        sent.withLock { $0.append(id) }
    }
}

struct Peer: VirtualActor {
    static let typeName = "peer"
    func handle(_ request: Int, state: inout NoState, context: ActorContext) async throws -> Int { request }
}

/// A journal write the test completes by hand.
final class ManualWrite: DurabilityBarrier {
    private let state = Mutex<(result: Result<Void, CallError>?, waiters: [CheckedContinuation<Void, any Error>])>(
        (nil, []))

    var isDurable: Bool {
        state.withLock { if case .success = $0.result { true } else { false } }
    }
    var waiting: Int { state.withLock { $0.waiters.count } }

    func waitUntilDurable() async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let known = state.withLock { state -> Result<Void, CallError>? in
                if state.result == nil { state.waiters.append(continuation) }
                return state.result
            }
            if let known { continuation.resume(with: known) }
        }
    }

    func complete(_ result: Result<Void, CallError>) {
        let waiters = state.withLock { state in
            state.result = result
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume(with: result) }
    }
}

/// What a test effect throws that is neither an `ActorFailure` nor a `CallError`.
enum PaymentError: Error {
    case gatewayDown(retryAfter: Int)
}

func context(_ effects: EffectLog?, router: any ActorCallRouter = RecordingRouter()) -> ActorContext {
    var context = ActorContext(
        id: ActorID(typeName: "shop", key: "s"), nodeID: NodeID(unchecked: "n"), callID: nil, router: router)
    context.effects = effects
    return context
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
        #expect(effects.allSatisfy { $0.failure == nil })
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

@Suite("Effect log: failures")
struct EffectLogFailureTests {
    @Test("an effect that throws is recorded with its error; replay throws an equal error without running it")
    func failureRoundTrip() async throws {
        let log = EffectLog()
        let live = context(log)
        var firstRun: [String] = []
        do {
            _ = try await live.run("charge") { () throws -> Int in
                throw ActorFailure(code: "declined", message: "card declined")
            }
        } catch let failure as ActorFailure {
            firstRun.append("ActorFailure \(failure.code) \(failure.message)")
        }
        do {
            _ = try await live.run("refund") { () throws -> Int in
                throw CallError(.remoteFailure, "bank failed", remoteCode: "closed")
            }
        } catch let error as CallError {
            firstRun.append("CallError \(error.code) \(error.remoteCode ?? "-") \(error.message)")
        }
        do {
            _ = try await live.run("notify") { () throws -> Int in throw PaymentError.gatewayDown(retryAfter: 5) }
        } catch let error as RecordedEffectFailure {
            firstRun.append("Recorded \(error.typeName) \(error.message)")
        }
        #expect(try await live.run("after") { "fine" } == "fine")
        #expect(
            firstRun == [
                "ActorFailure declined card declined", "CallError remoteFailure closed bank failed",
                "Recorded PaymentError gatewayDown(retryAfter: 5)",
            ])

        let recorded = try EffectLog.decode(try #require(try log.encoded()))
        #expect(recorded.map(\.name) == ["charge", "refund", "notify", "after"])
        #expect(recorded.map { $0.failure?.typeName } == ["ActorFailure", "CallError", "PaymentError", nil])
        let replay = context(EffectLog(replaying: recorded))
        let ran = Mutex(0)
        let declined = await #expect(throws: ActorFailure.self) {
            try await replay.run("charge") { () throws -> Int in
                ran.withLock { $0 += 1 }
                return 1
            }
        }
        #expect(declined == ActorFailure(code: "declined", message: "card declined"))
        let bank = await #expect(throws: CallError.self) { try await replay.run("refund") { 1 } }
        #expect(bank == CallError(.remoteFailure, "bank failed", remoteCode: "closed"))
        let down = await #expect(throws: RecordedEffectFailure.self) { try await replay.run("notify") { 1 } }
        #expect(down == RecordedEffectFailure(typeName: "PaymentError", message: "gatewayDown(retryAfter: 5)"))
        #expect(try await replay.run("after") { "not run" } == "fine")
        #expect(ran.withLock { $0 } == 0)
        try #require(replay.effects).finishReplay()
    }
}

@Suite("Effect log: non-determinism")
struct EffectLogNonDeterminismTests {
    func recorded(_ names: [String]) async throws -> [EffectLog.Effect] {
        let log = EffectLog()
        for name in names { _ = try await context(log).run(name) { 1 } }
        return try EffectLog.decode(try #require(try log.encoded()))
    }

    @Test("a replay that asks for fewer effects than were recorded is caught when the handler returns")
    func fewer() async throws {
        let log = EffectLog(replaying: try await recorded(["a", "b", "c"]))
        _ = try await context(log).run("a") { 1 }
        let error = #expect(throws: CallError.self) { try log.finishReplay() }
        #expect(error?.code == .storageFailure)
        #expect(
            error?.message
                == "non-determinism: replay asked for 1 effect, but the journal recorded 3; the first one not asked "
                + "for is 'b' at position 2")
    }

    @Test("a replay that asks for more effects than were recorded, or others, fails at that position, for good")
    func moreOrOther() async throws {
        let more = EffectLog(replaying: try await recorded(["a"]))
        _ = try await context(more).run("a") { 1 }
        // A handler that swallows the error does not hide it.
        _ = try? await context(more).run("b") { 1 }
        let error = #expect(throws: CallError.self) { try more.finishReplay() }
        #expect(
            error?.message
                == "non-determinism: replay asked for effect 'b' at position 2, but the journal recorded only 1")

        let other = EffectLog(replaying: try await recorded(["a", "b"]))
        let first = await #expect(throws: CallError.self) { try await context(other).run("x") { 1 } }
        #expect(
            first?.message == "non-determinism: replay asked for effect 'x' at position 1, the journal recorded 'a'")
        // Later effects fail with the same error, though they would match.
        let again = await #expect(throws: CallError.self) { try await context(other).run("b") { 1 } }
        #expect(again == first)
        #expect(throws: CallError.self) { try other.finishReplay() }
    }

    @Test("reminders' due times are lenient: recorded ones not asked for are passed over, new ones computed again")
    func reminders() async throws {
        // Recorded a wake-up that this replay's plan does not ask for, among other effects.
        let skipped = EffectLog(replaying: try await recorded(["a", "plex.reminder.wake", "b", "plex.reminder.wake"]))
        #expect(try await context(skipped).run("a") { 0 } == 1)
        #expect(try await context(skipped).run("b") { 0 } == 1)
        try skipped.finishReplay()
        // Asks for one the journal does not have: computed again; the recorded effects still match.
        let added = EffectLog(replaying: try await recorded(["a"]))
        #expect(try await context(added).run("plex.reminder.wake") { 7 } == 7)
        #expect(try await context(added).run("a") { 0 } == 1)
        try added.finishReplay()
        // A recorded one asked for again returns its recorded due time; other effects stay strict.
        let same = EffectLog(replaying: try await recorded(["plex.reminder.wake", "a"]))
        #expect(try await context(same).run("plex.reminder.wake") { 7 } == 1)
        await #expect(throws: CallError.self) { try await context(same).run("b") { 0 } }
    }

    @Test("a recorded result that does not decode as the type asked for is non-determinism too")
    func otherType() async throws {
        let log = EffectLog(replaying: try await recorded(["a"]))
        let error = await #expect(throws: CallError.self) { try await context(log).run("a") { "text" } }
        #expect(error?.code == .storageFailure)
        #expect(error?.message.contains("does not decode as String") == true)
    }
}

@Suite("Effect log: output gate")
struct EffectLogGateTests {
    @Test("run and calls through the context's references wait for the earlier write; now and random do not")
    func waitsForEarlierWrite() async throws {
        let earlier = ManualWrite()
        let router = RecordingRouter()
        let gated = context(EffectLog(after: earlier), router: router)
        let ran = Mutex(0)
        _ = try await gated.now()  // would hang if it waited
        _ = try await gated.random(in: 0...9)
        let effect = Task {
            try await gated.run("charge") {
                ran.withLock { $0 += 1 }
                return 1
            }
        }
        let peer = gated.actor(Peer.self, key: "p")
        let told = Task { try await peer.tell(1) }
        try await waitUntil { earlier.waiting == 2 }
        #expect(ran.withLock { $0 } == 0)
        #expect(router.sent.withLock { $0 }.isEmpty)
        earlier.complete(.success(()))
        #expect(try await effect.value == 1)
        try await told.value
        #expect(ran.withLock { $0 } == 1)
        #expect(router.sent.withLock { $0 } == [peer.id])
        // Once durable, nothing waits: a reference made now is a plain one.
        #expect(try await gated.run("again") { 2 } == 2)
    }

    @Test("when the earlier write fails, the effect and the call never start, and the error says why")
    func failedEarlierWrite() async throws {
        let earlier = ManualWrite()
        let router = RecordingRouter()
        let log = EffectLog(after: earlier)
        let gated = context(log, router: router)
        let ran = Mutex(0)
        let effect = Task {
            try await gated.run("charge") {
                ran.withLock { $0 += 1 }
                return 1
            }
        }
        let told = Task { try await gated.actor(Peer.self, key: "p").tell(1) }
        try await waitUntil { earlier.waiting == 2 }
        earlier.complete(.failure(CallError(.storageFailure, "disk full")))
        let effectError = await #expect(throws: CallError.self) { try await effect.value }
        let tellError = await #expect(throws: CallError.self) { try await told.value }
        for error in [effectError, tellError] {
            #expect(error?.code == .storageFailure)
            #expect(error?.message.contains("earlier message") == true)
        }
        #expect(ran.withLock { $0 } == 0)
        #expect(router.sent.withLock { $0 }.isEmpty)
        #expect(try log.encoded() == nil)  // an effect that never started is not recorded
    }
}

func waitUntil(within: Duration = .seconds(10), _ condition: () -> Bool) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now + within
    while !condition() {
        guard clock.now < deadline else { throw CancellationError() }
        try await Task.sleep(for: .milliseconds(1))
    }
}
