// `--activations` on generate, bench, audit and serve: float32 unless asked for, q8 named in what
// it changes (bench's output, generate's JSON and standard error, the audit report's settings),
// a bad value refused with exit 2; and bench's `--isa`.

import Foundation
import Testing
import ProbityAudit
import ProbityTestSupport

@Suite(.serialized) struct ActivationsCLITests {
    @Test(arguments: [["generate", "--prompt", "Hi", "--max-tokens", "1"],
                      ["bench", "--prompt-tokens", "4", "--gen-tokens", "1", "--repeat", "1"],
                      ["audit", "no-such-suite.yaml"],
                      ["serve", "--port", "0"]])
    func aBadValueIsBadInput(command: [String]) throws {
        let r = try CLI.run(command + ["--activations", "q4"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--activations: expected f32 or q8, found 'q4'"), "\(r.stderr)")
    }

    @Test func aBadLevelIsBadInput() throws {
        let r = try CLI.run(["bench", "--prompt-tokens", "4", "--gen-tokens", "1", "--repeat", "1", "--isa", "sse2"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--isa: expected avx512, avx2 or generic, found 'sse2'"), "\(r.stderr)")
    }

    @Test func benchNamesTheModeAndLevelItMeasured() throws {
        for (flags, want, level) in [([String](), "f32", nil), (["--activations", "q8", "--isa", "avx2"], "q8", "avx2"),
                                     (["--activations", "q8", "--isa", "generic"], "q8", "generic")] {
            for batch in [[], ["--batch", "2"]] {
                let r = try CLI.run(["bench", "--prompt-tokens", "8", "--gen-tokens", "2", "--repeat", "1", "--json"]
                                    + batch + flags)
                #expect(r.status == 0, "\(r.stderr)")
                let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
                #expect(object["activations"] as? String == want, "\(batch + flags)")
                if let level { #expect(object["isa"] as? String == level, "\(batch + flags)") }
                #expect(object["decode_tokens_per_second"] != nil || object["batches"] != nil)
            }
        }
    }

    /// Generation runs in the mode and says so. (Greedy, this prompt's answer changes with it: f32
    /// says "The capital of France is Paris.", q8 begins "L'Étoile, la", as llama.cpp's greedy
    /// answer does; the words depend on the kernels' float sums, so only the mode is checked.)
    @Test func generateInEightBitsSaysSo() throws {
        let r = try CLI.run(["generate", "--user", "What is the capital of France?", "--max-tokens", "24",
                             "--activations", "q8"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(!r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty, "\(r.stdout)")
        #expect(r.stderr.contains("activations: q8"), "\(r.stderr)")
        let json = try CLI.run(["generate", "--prompt", "Hi", "--max-tokens", "2", "--activations", "q8", "--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["activations"] as? String == "q8")
    }

    /// An audit in the 8-bit mode says so in its settings (a key the default report lacks), and the
    /// report still meets the schema and reads back.
    @Test func anAuditInEightBitsSaysSo() throws {
        try KVCacheCLITests.auditNamesItsSetting("activations", flags: ["--activations", "q8"], value: "q8") {
            $0.activations?.rawValue
        }
    }
}
