import PlexTestKit
import Synchronization
import Testing

@testable import PlexCluster

final class Recorder: Sendable {
    private let storage = Mutex<[String]>([])
    func append(_ s: String) { storage.withLock { $0.append(s) } }
    var events: [String] { storage.withLock { $0 } }
}

@Suite("Mailbox")
struct MailboxTests {
    @Test("jobs and callers take turns in FIFO order, one at a time")
    func fifo() async throws {
        let mailbox = Mailbox(turns: TurnTasks())
        let recorder = Recorder()
        let inside = Atomic<Int>(0)
        await mailbox.acquire()  // hold the turn so everything below queues
        for i in 0..<20 {
            mailbox.enqueue {
                #expect(inside.add(1, ordering: .relaxed).newValue == 1)
                await Task.yield()
                recorder.append("job \(i)")
                inside.subtract(1, ordering: .relaxed)
            }
        }
        mailbox.release()
        try await eventually("all jobs ran") { recorder.events.count == 20 }
        #expect(recorder.events == (0..<20).map { "job \($0)" })
    }

    @Test("a waiting caller gets the turn after the jobs queued before it")
    func callerAfterJobs() async throws {
        let mailbox = Mailbox(turns: TurnTasks())
        let recorder = Recorder()
        await mailbox.acquire()
        mailbox.enqueue { recorder.append("job") }
        let caller = Task {
            await mailbox.acquire()
            recorder.append("caller")
            mailbox.release()
        }
        try await eventually("the caller is queued behind the job") { mailbox.waiting == 2 }
        mailbox.enqueue { recorder.append("later job") }
        mailbox.release()
        await caller.value
        try await eventually("all ran") { recorder.events.count == 3 }
        #expect(recorder.events == ["job", "caller", "later job"])
    }
}

@Suite("Mailbox admission")
struct MailboxAdmissionTests {
    @Test("past its limit a mailbox refuses callers and jobs at once; what it admitted runs, in order")
    func limit() async throws {
        let mailbox = Mailbox(turns: TurnTasks())
        let recorder = Recorder()
        #expect(await mailbox.acquire(admitting: 2) == .admitted)  // the holder does not count
        #expect(mailbox.enqueue({ recorder.append("job 1") }, admitting: 2) == .admitted)
        let caller = Task {
            let admission = await mailbox.acquire(admitting: 2)
            recorder.append("caller")
            if admission == .admitted { mailbox.release() }
            return admission
        }
        try await eventually("the caller waits") { mailbox.waiting == 2 }
        #expect(mailbox.enqueue({ recorder.append("refused job") }, admitting: 2) == .full(first: true))
        #expect(await mailbox.acquire(admitting: 2) == .full(first: false))
        // The node's own work is never refused.
        #expect(mailbox.enqueue({ recorder.append("own job") }) == .admitted)
        mailbox.release()
        #expect(await caller.value == .admitted)
        try await eventually("everything admitted ran") { recorder.events.count == 3 }
        #expect(recorder.events == ["job 1", "caller", "own job"])
        try await eventually("the mailbox is empty and free") { mailbox.waiting == 0 }
        // Drained: admitting again, and the next refusal is a first one again.
        #expect(await mailbox.acquire(admitting: 0) == .admitted)
        #expect(mailbox.enqueue({}, admitting: 0) == .full(first: true))
        mailbox.release()
    }
}
