internal import NIOCore

/// Runs Swift tasks on a NIO event loop, so work that starts from a frame (and the reply it sends) stays
/// on the connection's thread instead of hopping to the global pool and back.
///
/// On this 2-core VM a wake-up of another thread costs tens of microseconds, more than the rest of a
/// call; keeping a call's tasks on the event loop that owns its connection removes two such wake-ups per
/// side. Work on it must not block: a handler that blocks the thread stalls every connection on that loop.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
