import NIOCore
import NIOEmbedded
import NIOPosix
import PlexTestKit
import PlexWire
import Synchronization
import Testing

@testable import PlexCluster

@Suite("Deadline sweep: the timeouts of local JSON calls")
struct DeadlineSweepTests {
    /// Counts its timeouts; answered when told.
    final class Waiter: DeadlineWaiter {
        let answered = Atomic<Bool>(false)
        let expiries = Atomic<Int>(0)
        var isAnswered: Bool { answered.load(ordering: .acquiring) }
        func expire() { expiries.add(1, ordering: .relaxed) }
        var expired: Int { expiries.load(ordering: .relaxed) }
    }

    @Test("a sweep times out the calls past their deadline, drops the answered ones, keeps the rest")
    func sweeps() {
        let sweep = DeadlineSweep(loop: EmbeddedEventLoop())
        let (due, answered, later) = (Waiter(), Waiter(), Waiter())
        sweep.add(due, deadline: Deadline(uptimeNanoseconds: 1_000))
        sweep.add(answered, deadline: Deadline(uptimeNanoseconds: 1_000))
        sweep.add(later, deadline: Deadline(uptimeNanoseconds: 5_000))
        sweep.add(Waiter(), deadline: Deadline.never)
        #expect(sweep.count == 3, "a call without a deadline is not held")
        answered.answered.store(true, ordering: .releasing)
        sweep.sweep(now: 999)
        #expect(due.expired == 0, "not before its deadline")
        #expect(sweep.count == 2, "the answered call is dropped")
        sweep.sweep(now: 1_000)
        #expect(due.expired == 1)
        #expect(answered.expired == 0, "an answered call gets no timeout")
        #expect(later.expired == 0)
        #expect(sweep.count == 1)
        sweep.sweep(now: 5_000)
        #expect(later.expired == 1)
        #expect(due.expired == 1, "a timeout is given once")
        #expect(sweep.count == 0)
    }

    @Test("the scheduled sweep gives a timeout by itself, within its resolution, and stops when nothing waits")
    func runsByItself() async throws {
        let sweep = DeadlineSweep(loop: MultiThreadedEventLoopGroup.singleton.next())
        let waiter = Waiter()
        let start = Deadline.now()
        sweep.add(waiter, deadline: Deadline(uptimeNanoseconds: start + 20_000_000))
        try await eventually("the timeout is given", within: .seconds(5), poll: .milliseconds(1)) {
            waiter.expired == 1
        }
        #expect(Deadline.now() >= start + 20_000_000, "not before the deadline")
        #expect(sweep.count == 0)
        // A call answered before its deadline is dropped at the next sweep, without a timeout.
        let answered = Waiter()
        sweep.add(answered, deadline: Deadline(uptimeNanoseconds: Deadline.now() + 60_000_000_000))
        answered.answered.store(true, ordering: .releasing)
        try await eventually("the answered call is dropped", within: .seconds(5), poll: .milliseconds(1)) {
            sweep.count == 0
        }
        #expect(answered.expired == 0)
    }
}
