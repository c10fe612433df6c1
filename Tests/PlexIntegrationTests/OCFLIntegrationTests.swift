import Foundation
import PlexExamples
import PlexTestKit
import Testing

/// Scenario 5: `plex ocfl update` as a user runs it: killed midway and run again, run with nothing to do, run
/// after the directory changed; each object checked by an independent OCFL validator (ocfl-py's
/// `ocfl-validate.py`, installed by scripts/test.sh and named by `PLEX_OCFL_VALIDATE`).
@Suite(
    "Scenario 5: an OCFL object update", .serialized, .enabled(if: NodeProcess.binary != nil), .timeLimit(.minutes(3)))
struct OCFLIntegrationTests {
    let binary = NodeProcess.binary ?? ""
    let directory = FileManager.default.temporaryDirectory.path + "/plex-ocfl-\(UInt32.random(in: 0...UInt32.max))"

    func update(_ extra: [String] = []) throws -> NodeProcess {
        try NodeProcess.launch(binary, ["ocfl", "update", "\(directory)/source", "\(directory)/object"] + extra)
    }

    /// Runs the independent validator on the object; returns its verdict line and whether it passed.
    func validate() async throws -> (Bool, String) {
        let validator = try #require(
            ProcessInfo.processInfo.environment["PLEX_OCFL_VALIDATE"], "scripts/test.sh installs ocfl-py")
        let process = try NodeProcess.launch(validator, ["\(directory)/object"])
        let code = try await process.waitForExit()
        return (
            code == 0 && process.standardOutput.contains("is VALID"), process.standardOutput + process.standardError
        )
    }

    func write(_ text: String, to path: String) throws {
        let url = URL(fileURLWithPath: "\(directory)/source/\(path)")
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(text.utf8).write(to: url)
    }

    @Test(
        "killed midway it resumes; again it has nothing to do; a changed directory adds v2, unchanged files deduplicated"
    )
    func updateResumeAndVersion() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for i in 1...6 { try write("file number \(i)\n", to: "data/file\(i).txt") }
        try write("same\n", to: "copy-a.txt")
        try write("same\n", to: "copy-b.txt")

        // 1 declaration, 1 directory, 7 distinct contents, 2 inventories: 11 steps, 300 ms before each.
        let first = try update(["--step-delay-ms", "300"])
        try await eventually("three steps done", within: .seconds(30)) { first.standardOutput.contains("[3/11]") }
        first.kill9()
        #expect(try await first.waitForExit() != 0)
        #expect(!FileManager.default.fileExists(atPath: "\(directory)/object/inventory.json"), "v1 not committed")

        let resumed = try update()
        #expect(try await resumed.waitForExit() == 0, "\(resumed.standardError)")
        let lines = resumed.standardOutput.split(separator: "\n")
        #expect(
            !lines.contains { $0.hasPrefix("[1/11]") || $0.hasPrefix("[2/11]") }, "finished steps did not run again")
        #expect(lines.contains { $0.hasPrefix("[11/11] write inventory.json") })
        #expect(lines.last?.contains("is at v1") == true)
        let (valid, report) = try await validate()
        #expect(valid, "\(report)")

        let again = try update()
        #expect(try await again.waitForExit() == 0)
        #expect(again.standardOutput.contains("nothing to do: v1"), "\(again.standardOutput)")

        try write("file number 2, changed\n", to: "data/file2.txt")
        try write("new\n", to: "data/new.txt")
        try FileManager.default.removeItem(atPath: "\(directory)/source/copy-b.txt")
        let second = try update()
        #expect(try await second.waitForExit() == 0, "\(second.standardError)")
        #expect(second.standardOutput.contains("is at v2 (5 steps)"), "\(second.standardOutput)")
        let (validAgain, reportAgain) = try await validate()
        #expect(validAgain, "\(reportAgain)")
        let inventory = try #require(OCFLInventory.read(rootOf: "\(directory)/object"))
        let v2Content = inventory.manifest.values.flatMap { $0 }.filter { $0.hasPrefix("v2/") }.sorted()
        #expect(v2Content == ["v2/content/data/file2.txt", "v2/content/data/new.txt"], "unchanged files not copied")
        let v2Paths = Set(inventory.versions["v2"]?.state.values.flatMap { $0 } ?? [])
        #expect(v2Paths.contains("copy-a.txt") && !v2Paths.contains("copy-b.txt") && v2Paths.count == 8)
        #expect(inventory.versions["v1"]?.state.values.flatMap { $0 }.count == 8, "v1's state is kept")
    }

    @Test("a resume that fails on a changed file, then a rerun, gives a valid object; bad targets are refused")
    func failedResumeAndBadTargets() async throws {
        defer { try? FileManager.default.removeItem(atPath: directory) }
        for i in 1...4 { try write("file \(i)\n", to: "f\(i).txt") }
        let first = try update(["--step-delay-ms", "300"])
        try await eventually("two files copied", within: .seconds(30)) { first.standardOutput.contains("[4/8]") }
        first.kill9()
        _ = try await first.waitForExit()
        // The source changes under the unfinished update: its resume fails on the changed file...
        try FileManager.default.removeItem(atPath: "\(directory)/source/f3.txt")
        try write("file 4, changed\n", to: "f4.txt")
        let resumed = try update()
        #expect(try await resumed.waitForExit() != 0)
        #expect(resumed.standardError.contains("changed since it was staged"), "\(resumed.standardError)")
        // ...and the next run plans again from what is there, clearing the unfinished version.
        let rerun = try update()
        #expect(try await rerun.waitForExit() == 0, "\(rerun.standardError)")
        let (valid, report) = try await validate()
        #expect(valid, "\(report)")
        #expect(
            OCFLInventory.read(rootOf: "\(directory)/object")?.headFiles.keys.sorted() == [
                "f1.txt", "f2.txt", "f4.txt",
            ])

        // A directory that is not an OCFL object is not written into; overlapping paths are refused.
        let foreign = "\(directory)/foreign"
        try FileManager.default.createDirectory(atPath: foreign, withIntermediateDirectories: true)
        try Data("mine\n".utf8).write(to: URL(fileURLWithPath: "\(foreign)/readme"))
        let refused = try NodeProcess.launch(binary, ["ocfl", "update", "\(directory)/source", foreign])
        #expect(try await refused.waitForExit() != 0)
        #expect(refused.standardError.contains("not an OCFL object"), "\(refused.standardError)")
        #expect(try String(contentsOfFile: "\(foreign)/readme", encoding: .utf8) == "mine\n")
        let nested = try NodeProcess.launch(
            binary, ["ocfl", "update", "\(directory)/source", "\(directory)/source/object"])
        #expect(try await nested.waitForExit() != 0)
        #expect(nested.standardError.contains("outside the source"), "\(nested.standardError)")
    }
}
