package import NIOCore

/// Runs Swift tasks on a NIO event loop, so work that starts from a frame (and the reply it sends) stays
/// on the connection's thread instead of hopping to the global pool and back.
///
/// On this 2-core VM a wake-up of another thread costs tens of microseconds, more than the rest of a
/// call; keeping a call's tasks on the event loop that owns its connection removes two such wake-ups per
/// side (the HTTP gateway runs each connection's requests on its loop for the same reason). Work on it must
/// not block: a handler that blocks the thread stalls every connection on that loop.
package final class EventLoopTaskExecutor: TaskExecutor {
    package let eventLoop: any EventLoop

    package init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    package func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
