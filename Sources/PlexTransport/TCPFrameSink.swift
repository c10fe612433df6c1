internal import NIOCore
internal import PlexWire
internal import Synchronization

/// Writes frames to a channel, coalescing every frame queued before the event loop gets to them into
/// one buffer and one flush.
final class TCPFrameSink: FrameSink {
    /// Frames serialised as they are sent, into one buffer that the next flush writes whole.
    private struct Pending {
        var buffer: ByteBuffer?
        var frames = 0
        var scheduled = false
    }

    let channel: any Channel
    let counters: TrafficCounters
    let executor: EventLoopTaskExecutor
    private let pending = Mutex(Pending())

    init(channel: any Channel, counters: TrafficCounters, executor: EventLoopTaskExecutor) {
        self.channel = channel
        self.counters = counters
        self.executor = executor
    }

    var taskExecutor: (any TaskExecutor)? { executor }

    /// A batch this large (frames or bytes) is written at once by the event loop instead of at the end of
    /// its tick, so a long burst is pipelined with the peer instead of bouncing between the two processes as
    /// one block, each side idle while the other works. Measured with 64 callers on this 2-core VM:
    /// 113 k calls/s at the end of the tick only, 200 k with 16 or 32 frames, 130 k with 48.
    static let eagerFlushFrames = 32
    static let eagerFlushBytes = 16 * 1024

    func write(_ frame: Wire.Frame) {
        let (schedule, full) = pending.withLock { pending -> (Bool, Bool) in
            if pending.buffer == nil {
                pending.buffer = channel.allocator.buffer(capacity: max(512, frame.wireSize))
            }
            pending.buffer!.writeFrame(frame)
            pending.frames += 1
            let full =
                pending.frames >= Self.eagerFlushFrames || pending.buffer!.readableBytes >= Self.eagerFlushBytes
            if pending.scheduled { return (false, full) }
            pending.scheduled = true
            return (true, full)
        }
        if full && channel.eventLoop.inEventLoop {
            flush(endOfBatch: false)
        } else if schedule {
            channel.eventLoop.execute { self.flush(endOfBatch: true) }
        }
    }

    private func flush(endOfBatch: Bool) {
        let (buffer, frames) = pending.withLock { pending -> (ByteBuffer?, Int) in
            defer {
                pending.buffer = nil
                pending.frames = 0
                if endOfBatch { pending.scheduled = false }
            }
            return (pending.buffer, pending.frames)
        }
        guard let buffer, frames > 0 else { return }
        counters.sent(frames: frames, bytes: buffer.readableBytes)
        channel.writeAndFlush(buffer, promise: nil)
    }

    /// Writes what is queued (a refusal's reason, a last reply), then closes.
    func close() {
        if channel.eventLoop.inEventLoop {
            flush(endOfBatch: true)
            channel.close(promise: nil)
        } else {
            channel.eventLoop.execute {
                self.flush(endOfBatch: true)
                self.channel.close(promise: nil)
            }
        }
    }
}
