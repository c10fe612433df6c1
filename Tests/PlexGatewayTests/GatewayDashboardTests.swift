import Foundation
import HTTPTypes
import PlexExamples
import PlexGateway
import PlexSpaces
import PlexTestKit
import Testing

@Suite("HTTP gateway: the dashboard", .timeLimit(.minutes(3)))
struct GatewayDashboardTests {
    @Test("the overview lists the members, activations by type, failed calls (escaped) and workflows by status")
    func overview() async throws {
        try await withGateway { cluster, client in
            _ = try await client.send(.post, "/v1/actors/counter/dash", body: #"{"increment":{}}"#)
            // A handler that fails, under a key that is also markup: listed, and escaped.
            let hostile = "<b>x</b>"
            let failed = try await client.send(
                .post, "/v1/actors/ledger/\(hostile.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!)",
                body: #"{"withdraw":{"amount":5}}"#)
            #expect(failed.status == .internalServerError, "\(failed.text)")
            let started = try await client.send(
                .post, "/v1/workflows/order/dash-1", body: #"{"order":"dash-1","amount":5}"#)
            #expect(started.status == .created || started.status == .ok, "\(started.text)")
            _ = try await client.send(.get, "/v1/workflows/dash-1/result?wait_ms=20000")
            // The workflow list is the index's, which hears of the instance in a batch after it closed.
            try await eventually("the index lists the finished workflow") {
                try await client.send(.get, "/dashboard").text.contains(#"href="/dashboard/workflows/dash-1""#)
            }

            let page = try await client.send(.get, "/dashboard")
            #expect(page.status == .ok)
            #expect(page.headers[.contentType] == "text/html; charset=utf-8")
            for node in [cluster.node(0), cluster.node(1)] {
                #expect(page.text.contains(#"data-node="\#(node.nodeID.rawValue)" data-state="up""#), "\(page.text)")
            }
            #expect(page.text.contains("<code>counter</code>") || page.text.contains("<code>ledger</code>"))
            #expect(!page.text.contains(hostile), "markup from a key is escaped")
            #expect(page.text.contains(#"<p id="workflow-counts">"#))
            #expect(page.text.contains(#"href="/dashboard/workflows/dash-1""#), "\(page.text)")

            let timeline = try await client.send(.get, "/dashboard/workflows/dash-1")
            #expect(timeline.status == .ok)
            #expect(timeline.text.contains(#"<div id="timeline">"#))
            #expect(timeline.text.contains(#"data-kind="activity""#), "\(timeline.text)")
            #expect(timeline.text.contains("completed"))
            let missing = try await client.send(.get, "/dashboard/workflows/<never-was>")
            #expect(missing.status == .notFound)
            #expect(missing.headers[.contentType] == "text/html; charset=utf-8", "a page, for a browser")
            #expect(missing.text.contains("&lt;never-was&gt;") && !missing.text.contains("<never-was>"))
        }
    }

    @Test("failed calls on the gateway's node are listed with their error")
    func failedCalls() async throws {
        try await withGateway(nodes: 1) { _, client in
            let failed = try await client.send(.post, "/v1/actors/ledger/dash-f", body: #"{"withdraw":{"amount":5}}"#)
            #expect(failed.status == .internalServerError)
            let page = try await client.send(.get, "/dashboard")
            let section = try #require(page.text.range(of: #"<table id="failed">"#), "\(page.text)")
            #expect(page.text[section.lowerBound...].contains("ledger/dash-f"))
        }
    }

    @Test(
        "in headless Chromium the overview renders the member list: the DOM has every member, the screenshot its badges",
        .enabled(if: ProcessInfo.processInfo.environment["PLEX_BROWSER_CHECK"] == "1", "scripts/test.sh sets it"))
    func inABrowser() async throws {
        try await withLiveGateway(configuration: GatewayConfiguration()) { cluster, ports in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("plex-dash-\(UUID())")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let report = try await browserCheck(
                "http://127.0.0.1:\(ports.http)/dashboard", directory.path + "/shot.png")
            let members = try #require(report["members"] as? [[String: String]], "\(report)")
            #expect(
                Set(members.map { $0["node"] ?? "" }) == [
                    cluster.node(0).nodeID.rawValue, cluster.node(1).nodeID.rawValue,
                ])
            #expect(members.allSatisfy { $0["state"] == "up" })
            #expect((report["png_bytes"] as? Int ?? 0) > 10_000, "\(report)")
            #expect((report["colours"] as? Int ?? 0) > 20, "a page, not a blank: \(report)")
            // The only green on a page without workflows is the members' "up" badges: two of them drawn.
            #expect((report["green_pixels"] as? Int ?? 0) > 2 * 300, "\(report)")
            let png = try Data(contentsOf: directory.appendingPathComponent("shot.png"))
            #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]))
        }
    }

    /// Runs `scripts/browser-check.py` on `url`; its JSON report.
    func browserCheck(_ url: String, _ screenshot: String) async throws -> [String: Any] {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/browser-check.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, url, screenshot]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Read before waiting: a full pipe would stall the script.
        let data = await Task.detached { output.fileHandleForReading.readDataToEndOfFile() }.value
        let failure = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "\(String(decoding: failure, as: UTF8.self))")
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }
}
