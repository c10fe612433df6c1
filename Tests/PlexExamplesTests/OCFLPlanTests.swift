import PlexExamples
import Testing

@Suite("Scenario 5: planning an OCFL version")
struct OCFLPlanTests {
    func file(_ path: String, _ digest: String, _ size: Int = 1) -> OCFLStagedFile {
        OCFLStagedFile(path: path, digest: digest, size: size)
    }

    @Test("a new object: declaration, content directory, one copy per distinct digest, then the two inventories")
    func newObject() throws {
        let plan = try #require(
            OCFLPlan.make(
                id: "urn:x", staged: [file("b.txt", "d1"), file("a.txt", "d1"), file("c/d.txt", "d2", 19)],
                current: nil, created: "2026-12-02T00:00:00Z", message: "m"))
        #expect(
            plan.steps.map(\.summary) == [
                "write 0=ocfl_object_1.1", "create v1/content", "copy v1/content/a.txt (1 bytes)",
                "copy v1/content/c/d.txt (19 bytes)", "write v1/inventory.json and its .sha512",
                "write inventory.json and inventory.json.sha512",
            ])
        #expect(plan.inventory.head == "v1")
        #expect(plan.inventory.manifest == ["d1": ["v1/content/a.txt"], "d2": ["v1/content/c/d.txt"]])
        #expect(plan.inventory.versions["v1"]?.state == ["d1": ["a.txt", "b.txt"], "d2": ["c/d.txt"]])
        #expect(plan.inventory.versions["v1"]?.created == "2026-12-02T00:00:00Z")
    }

    @Test("the same content again needs no version; a change adds the next, copying only new digests")
    func nextVersion() throws {
        let first = try #require(
            OCFLPlan.make(
                id: "urn:x", staged: [file("a", "d1"), file("b", "d2")], current: nil, created: "t1", message: ""))
        #expect(
            OCFLPlan.make(
                id: "urn:x", staged: [file("b", "d2"), file("a", "d1")], current: first.inventory, created: "t2",
                message: "") == nil)
        let second = try #require(
            OCFLPlan.make(
                id: "urn:x", staged: [file("a", "d1"), file("b", "d3"), file("moved", "d2")], current: first.inventory,
                created: "t2", message: ""))
        #expect(
            second.steps.map(\.summary) == [
                "create v2/content", "copy v2/content/b (1 bytes)", "write v2/inventory.json and its .sha512",
                "write inventory.json and inventory.json.sha512",
            ])
        #expect(second.inventory.versions["v2"]?.state == ["d1": ["a"], "d2": ["moved"], "d3": ["b"]])
        #expect(second.inventory.versions["v1"] == first.inventory.versions["v1"])
        #expect(second.inventory.manifest["d2"] == ["v1/content/b"], "moved content is not copied again")
    }
}
