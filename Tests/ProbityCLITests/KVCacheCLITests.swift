// `--kv-cache` on generate, bench and audit: f32 unless asked for, f16 named in what it changes
// (bench's output, the audit report's settings), and a bad value refused with exit 2.

import Foundation
import Testing
import ProbityAudit
import ProbityTestSupport

@Suite(.serialized) struct KVCacheCLITests {
    @Test(arguments: [["generate", "--prompt", "Hi", "--max-tokens", "1"],
                      ["bench", "--prompt-tokens", "4", "--gen-tokens", "1", "--repeat", "1"],
                      ["bench", "--batch", "2", "--prompt-tokens", "4", "--gen-tokens", "1", "--repeat", "1"],
                      ["audit", "no-such-suite.yaml"]])
    func aBadValueIsBadInput(command: [String]) throws {
        let r = try CLI.run(command + ["--kv-cache", "f8"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--kv-cache: expected f32 or f16, found 'f8'"), "\(r.stderr)")
    }

    @Test func benchNamesTheCacheItMeasured() throws {
        for (flags, want) in [([String](), "f32"), (["--kv-cache", "f16"], "f16")] {
            for batch in [[], ["--batch", "2"]] {
                let r = try CLI.run(["bench", "--prompt-tokens", "8", "--gen-tokens", "2", "--repeat", "1", "--json"]
                                    + batch + flags)
                #expect(r.status == 0, "\(r.stderr)")
                let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
                #expect(object["kv_cache"] as? String == want, "\(batch + flags)")
            }
        }
    }

    @Test func generateWithAHalfCacheAnswers() throws {
        let r = try CLI.run(["generate", "--user", "What is the capital of France?", "--max-tokens", "24",
                             "--kv-cache", "f16"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Paris"), "\(r.stdout)")
    }

    /// An audit with the half cache says so in its settings (a key the default report lacks), and
    /// the report still meets the schema and reads back.
    @Test func anAuditWithAHalfCacheSaysSo() throws {
        try Self.auditNamesItsSetting("kv_cache", flags: ["--kv-cache", "f16"], value: "f16") { $0.kvCache?.rawValue }
    }

    /// Audits a small suite without and with `flags`: `settings[key]` is absent, then `value`; both
    /// reports meet the schema and read back with `read` giving the same.
    static func auditNamesItsSetting(_ key: String, flags: [String], value: String,
                                     read: (AuditReport.Settings) -> String?) throws {
        let dir = try CLI.scratch()
        let path = try AuditCLITests.suite(dir, expect: "fires")
        let schemaData = try Data(contentsOf: URL(fileURLWithPath: AuditCLITests.repo + "/docs/report.schema.json"))
        let schema = JSONSchemaValidator(root: try #require(try JSONSerialization.jsonObject(with: schemaData) as? [String: Any]))
        for (flags, want) in [([String](), nil), (flags, value)] as [([String], String?)] {
            let out = dir.appendingPathComponent("r\(flags.count).json").path
            let r = try CLI.run(["audit", path, "--out", out, "--junit", out + ".xml", "--threads", "2"] + flags)
            #expect(r.status == 0, "\(r.stderr)")
            let data = try Data(contentsOf: URL(fileURLWithPath: out))
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            let settings = try #require(object["settings"] as? [String: Any])
            #expect(settings[key] as? String == want)
            #expect(schema.validate(object) == [])
            #expect(read(try AuditReport.decode(data, path: out).settings) == want)
        }
    }
}
