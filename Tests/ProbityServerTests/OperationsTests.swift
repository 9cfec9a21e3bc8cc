// Running a server: a full queue answers 429 with Retry-After, the API key guards every endpoint but
// /health, the audit log holds one report per request that `report merge` joins, /metrics counts,
// /v1/models and /health answer, and shutdown turns new requests away with 503.

import Foundation
import Hummingbird
import HummingbirdTesting
import ProbityAudit
import ProbityServe
import ProbityServer
import Testing

@Suite(.serialized) struct OperationsTests {
    @Test func aFullQueueAnswers429() async throws {
        try await ServerFixture.test(try ServerFixture.server(maxQueue: 1, maxBatch: 1)) { client in
            let body = try ServerFixture.encode(ServerFixture.chat("Tell me a story about a dragon.", maxTokens: 24))
            let statuses = try await withThrowingTaskGroup(of: (HTTPResponse.Status, String?, String?).self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        let r = try await ServerFixture.post(client, "/v1/chat/completions", body)
                        let code = r.status == .tooManyRequests ? try ServerFixture.error(r).code : nil
                        return (r.status, r.headers[.retryAfter], code)
                    }
                }
                var out: [(HTTPResponse.Status, String?, String?)] = []
                for try await s in group { out.append(s) }
                return out
            }
            let refused = statuses.filter { $0.0 == .tooManyRequests }
            #expect(!refused.isEmpty, "six requests at once overflow a queue of one")
            #expect(refused.allSatisfy { $0.1 == "1" && $0.2 == "rate_limit_exceeded" })
            #expect(statuses.contains { $0.0 == .ok })
            #expect(statuses.allSatisfy { $0.0 == .ok || $0.0 == .tooManyRequests })
        }
    }

    @Test func theAPIKeyGuardsAllButHealth() async throws {
        try await ServerFixture.test(try ServerFixture.server(apiKey: "sekret")) { client in
            let none = try await client.execute(uri: "/v1/models", method: .get)
            #expect(none.status == .unauthorized)
            #expect(try ServerFixture.error(none).code == "invalid_api_key")
            let wrong = try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer sekreT"])
            #expect(wrong.status == .unauthorized)
            let chat = try await ServerFixture.post(client, "/v1/chat/completions", try ServerFixture.encode(ServerFixture.chat("hi")))
            #expect(chat.status == .unauthorized)
            let metrics = try await client.execute(uri: "/metrics", method: .get)
            #expect(metrics.status == .unauthorized)
            let right = try await client.execute(uri: "/v1/models", method: .get, headers: [.authorization: "Bearer sekret"])
            #expect(right.status == .ok)
            let models = try ServerFixture.decode(ModelList.self, right)
            #expect(models.object == "list" && models.data.map(\.id) == ["Smollm2 135M 8k Lc100K Mix1 Ep2"])
            #expect(models.data.first?.object == "model")
            let health = try await client.execute(uri: "/health", method: .get)
            #expect(health.status == .ok)
            #expect(try ServerFixture.decode(HealthStatus.self, health) == HealthStatus(status: "ok", queued: 0, running: 0))
        }
    }

    @Test func theAuditLogHoldsOneReportPerRequestAndMerges() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("probity-serve-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/audit.jsonl"
        let ids = try await ServerFixture.test(try ServerFixture.server(auditLog: path)) { client in
            var ids: [String] = []
            for q in ["Hi there", "Name a colour."] {
                let r = try await ServerFixture.post(client, "/v1/chat/completions", try ServerFixture.encode(ServerFixture.chat(q)))
                ids.append(try ServerFixture.decode(ChatCompletion.self, r).id)
            }
            let t = try await ServerFixture.post(client, "/v1/completions",
                                                 try ServerFixture.encode(TextCompletionRequest(prompt: "Once upon a time", maxTokens: 8, temperature: 0)))
            ids.append(try ServerFixture.decode(TextCompletion.self, t).id)
            let s = try await ServerFixture.post(client, "/v1/chat/completions", try ServerFixture.encode(ServerFixture.chat("Hello", stream: true)))
            let chunks = try ServerFixture.events(s).map { try JSONDecoder().decode(ChatCompletionChunk.self, from: $0) }
            ids.append(try #require(chunks.first).id)
            // A refused request is not logged.
            _ = try await ServerFixture.post(client, "/v1/completions", json: #"{"prompt": 1}"#)
            return ids
        }
        let text = try String(contentsOfFile: path, encoding: .utf8)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 5 && lines.last == "", "four lines, each ending in a newline")
        for (i, line) in lines.dropLast().enumerated() {
            let report = try AuditReport.decode(Data(line.utf8), path: "line \(i + 1)")
            #expect(report.cases.count == 1)
            #expect(report.cases.first?.id == ids[i])
        }
        let reports = try AuditReport.readAll(path: path)
        #expect(reports.count == 4)
        let merged = try AuditReport.merge(reports.map { (path, $0) })
        #expect(merged.cases.count == 4)
        #expect(Set(merged.cases.map(\.id)) == Set(ids))
        #expect(Set(merged.cases.map(\.index)).count == 4, "case indexes are unique in a log")
        // The merged report reads back as a report file.
        let out = dir + "/merged.json"
        try AuditReport.writeAtomically(try merged.json(), to: out)
        #expect(try AuditReport.readAll(path: out).count == 1)
    }

    @Test func theAuditLogRotatesBySize() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("probity-rotate-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/audit.jsonl"
        // Every line is larger than the limit: each request after the first rotates the file.
        try await ServerFixture.test(try ServerFixture.server(auditLog: path, auditLogMaxBytes: 100, keep: 2)) { client in
            for q in ["one", "two", "three", "four"] {
                let r = try await ServerFixture.post(client, "/v1/chat/completions", try ServerFixture.encode(ServerFixture.chat(q, maxTokens: 2)))
                #expect(r.status == .ok)
            }
        }
        let fm = FileManager.default
        #expect(fm.fileExists(atPath: path + ".1") && fm.fileExists(atPath: path + ".2"))
        #expect(!fm.fileExists(atPath: path + ".3"), "only `keep` rotated files stay")
        let newest = try AuditReport.readAll(path: path), previous = try AuditReport.readAll(path: path + ".1")
        let oldest = try AuditReport.readAll(path: path + ".2")
        #expect(newest.count == 1 && previous.count == 1 && oldest.count == 1)
        #expect(newest.first?.cases.first?.prompt.contains("four") == true)
        #expect(previous.first?.cases.first?.prompt.contains("three") == true)
        #expect(oldest.first?.cases.first?.prompt.contains("two") == true)
    }

    @Test func metricsCountRequestsTokensAndFindings() async throws {
        try await ServerFixture.test(try ServerFixture.server(rules: [ServerFixture.goldRules])) { client in
            let r = try await ServerFixture.post(client, "/v1/chat/completions", try ServerFixture.encode(ServerFixture.chat("Where should I go on vacation this summer?", maxTokens: 12)))
            #expect(r.status == .ok)
            let c = try ServerFixture.decode(ChatCompletion.self, r)
            #expect(c.probity.findings.map(\.rule) == ["demo.gold"], "the clamped gold latent fires its rule")
            _ = try await client.execute(uri: "/nowhere", method: .get)
            let m = try await client.execute(uri: "/metrics", method: .get)
            #expect(m.status == .ok)
            #expect(m.headers[.contentType]?.hasPrefix("text/plain") == true)
            let text = String(decoding: m.body.readableBytesView, as: UTF8.self)
            for needle in [
                #"probity_http_requests_total{endpoint="/v1/chat/completions",status="200"} 1"#,
                #"probity_http_requests_total{endpoint="other",status="404"} 1"#,
                "probity_prompt_tokens_total \(c.usage.promptTokens)",
                "probity_completion_tokens_total \(c.usage.completionTokens)",
                "probity_queue_depth 0",
                "probity_running_requests 0",
                #"probity_request_duration_seconds_bucket{endpoint="/v1/chat/completions""#,
                #"probity_time_to_first_token_seconds_count{endpoint="/v1/chat/completions"} 1"#,
                #"probity_findings_total{rule="demo.gold",severity="info"} 1"#,
            ] {
                #expect(text.contains(needle), "\(needle)")
            }
        }
    }

    @Test func shutdownTurnsNewRequestsAway() async throws {
        let server = try ServerFixture.server()
        try await ServerFixture.test(server) { client in
            server.beginShutdown()
            let r = try await ServerFixture.post(client, "/v1/chat/completions", try ServerFixture.encode(ServerFixture.chat("hi")))
            #expect(r.status == .serviceUnavailable)
            let e = try ServerFixture.error(r)
            #expect(e.type == "server_unavailable")
            let health = try await client.execute(uri: "/health", method: .get)
            #expect(health.status == .serviceUnavailable)
            #expect(try ServerFixture.decode(HealthStatus.self, health).status == "shutting_down")
        }
    }
}
