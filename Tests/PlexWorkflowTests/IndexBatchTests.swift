import Testing

@testable import PlexWorkflow

@Suite("The index's batches")
struct IndexBatchTests {
    @Test("a batch's one change per instance leaves every shard state as the changes one after another would")
    func coalescedChangesMatchSequentialOnes() {
        var changes: [WorkflowIndex.Change] = [.remove(id: "w")]
        for status in [WorkflowStatus.running, .completed, .cancelled] {
            for startedAt: Int64 in [1, 2] {
                changes.append(
                    .update(
                        WorkflowSummary(
                            id: "w", type: "t", status: status, startedAt: startedAt,
                            closedAt: status.isClosed ? startedAt + 1 : nil)))
            }
        }
        var shards = [WorkflowIndex.State()]
        for change in changes {
            var shard = WorkflowIndex.State()
            shard.apply(change)
            shards.append(shard)
        }
        var checked = 0
        for shard in shards {
            for first in changes {
                for second in changes {
                    var sequential = shard
                    sequential.apply(first)
                    sequential.apply(second)
                    guard let merged = first.then(second) else { continue }
                    var coalesced = shard
                    coalesced.apply(merged)
                    #expect(coalesced == sequential, "\(shard) then \(first), \(second)")
                    checked += 1
                }
            }
        }
        #expect(checked > 8 * 7 * 7 / 2, "most pairs merge")
        // The usual batch: an instance that starts and closes within it sends only its close.
        let running = WorkflowSummary(id: "w", type: "t", status: .running, startedAt: 5)
        var closed = running
        closed.status = .completed
        closed.closedAt = 6
        #expect(WorkflowIndex.Change.update(running).then(.update(closed)) == .update(closed))
        #expect(WorkflowIndex.Change.update(closed).then(.update(running)) == .update(closed))
    }
}
