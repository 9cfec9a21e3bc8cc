// The model-running commands through the real binary on the default model: generate, logits,
// activations, bench, and their bad-input paths (exit 2, one message).

import Foundation
import Testing
import ProbityFormats

@Suite struct ModelCommandTests {
    @Test func generateAnswersACapitalQuestion() throws {
        let r = try CLI.run(["generate", "--user", "What is the capital of France?", "--max-tokens", "24"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Paris"), "\(r.stdout)")
    }

    @Test func generateJSONIsSeededAndReproducible() throws {
        let args = ["generate", "--prompt", "Once upon a time", "--max-tokens", "12",
                    "--temperature", "0.9", "--top-p", "0.95", "--seed", "7", "--json"]
        let a = try CLI.run(args), b = try CLI.run(args)
        #expect(a.status == 0 && b.status == 0, "\(a.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(a.stdout.utf8)) as? [String: Any])
        #expect((object["tokens"] as? [Int])?.count == 12)
        #expect(object["finish_reason"] as? String == "length")
        // Same seed, same tokens; timings differ, so compare the tokens and text only.
        let other = try #require(try JSONSerialization.jsonObject(with: Data(b.stdout.utf8)) as? [String: Any])
        #expect(object["tokens"] as? [Int] == other["tokens"] as? [Int])
        #expect(object["text"] as? String == other["text"] as? String)
    }

    @Test func generateStopsAtAStopString() throws {
        let r = try CLI.run(["generate", "--prompt", "The capital of France is Paris. The capital of Germany is",
                             "--max-tokens", "30", "--stop", ".", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["finish_reason"] as? String == "stop")
        #expect(object["text"] as? String == " Berlin")
    }

    @Test func logitsMatchTheReferenceTopToken() throws {
        let dir = try CLI.scratch()
        let npy = dir.appendingPathComponent("logits.npy").path
        let r = try CLI.run(["logits", "--text", "The capital of France is Paris. The capital of Germany is",
                             "--top", "3", "--json", "--npy", npy])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let top = try #require(object["top"] as? [[String: Any]])
        #expect(top.first?["id"] as? Int == 11452)
        #expect(top.first?["piece"] as? String == " Berlin")
        let array = try NPY.read(path: npy)
        #expect(array.shape == [49152])
    }

    @Test func logitsOfAllPositions() throws {
        let dir = try CLI.scratch()
        let npy = dir.appendingPathComponent("all.npy").path
        let r = try CLI.run(["logits", "--text", "<|im_start|>user\nHi", "--parse-special", "--add-bos",
                             "--all-positions", "--npy", npy])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try NPY.read(path: npy).shape == [5, 49152])
    }

    @Test func activationsHaveOneRowPerToken() throws {
        let dir = try CLI.scratch()
        let npy = dir.appendingPathComponent("acts.npy").path
        let r = try CLI.run(["activations", "--hook", "blocks.15.hook_resid_post",
                             "--text", "The capital of France is Paris.", "--npy", npy])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try NPY.read(path: npy).shape == [7, 576])
    }

    @Test func badHookNamesAreInputErrors() throws {
        let missing = try CLI.run(["activations", "--hook", "blocks.30.hook_resid_post", "--text", "Hi"])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("blocks.30.hook_resid_post") && missing.stderr.contains("30 blocks"))
        let garbage = try CLI.run(["activations", "--hook", "blocks.3.resid", "--text", "Hi"])
        #expect(garbage.status == 2)
        #expect(garbage.stderr.contains("is not a hook name"))
    }

    @Test func badGenerationArgumentsAreInputErrors() throws {
        let two = try CLI.run(["generate", "--user", "Hi", "--prompt", "Hi"])
        #expect(two.status == 2 && two.stderr.contains("exactly one of"))
        let temp = try CLI.run(["generate", "--prompt", "Hi", "--temperature=-1"])
        #expect(temp.status == 2 && temp.stderr.contains("temperature"))
        let max = try CLI.run(["generate", "--prompt", "Hi", "--max-tokens=-3"])
        #expect(max.status == 2 && max.stderr.contains("max tokens"))
        let model = try CLI.run(["generate", "/no/such/model.gguf", "--prompt", "Hi"])
        #expect(model.status == 2 && model.stderr.contains("/no/such/model.gguf"))
    }

    @Test func promptLongerThanTheContextIsAnInputError() throws {
        let long = String(repeating: "word ", count: 9000)
        let r = try CLI.run(["logits", "--text", long])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("positions but the context holds 8192"))
    }

    @Test func benchReportsJSON() throws {
        let r = try CLI.run(["bench", "--prompt-tokens", "16", "--gen-tokens", "4", "--repeat", "1",
                             "--sae-latents", "256", "--hook", "blocks.3.hook_resid_post", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let decode = try #require(object["decode_tokens_per_second"] as? [String: Any])
        #expect((decode["median"] as? Double ?? 0) > 0)
        #expect((object["peak_rss_bytes"] as? Int ?? 0) > 0)
        let sae = try #require(object["sae"] as? [String: Any])
        #expect(sae["latents"] as? Int == 256 && sae["hook"] as? String == "blocks.3.hook_resid_post")
        #expect(sae["decode_slowdown"] is Double)
    }

    @Test func benchRejectsAMissingHook() throws {
        let r = try CLI.run(["bench", "--prompt-tokens", "4", "--gen-tokens", "1", "--repeat", "1",
                             "--sae-latents", "16", "--hook", "blocks.40.hook_resid_post"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("blocks.40.hook_resid_post"))
    }

    @Test func benchBatchReportsEachSize() throws {
        let r = try CLI.run(["bench", "--prompt-tokens", "8", "--gen-tokens", "3", "--repeat", "1",
                             "--batch", "1,3", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(object["fused"] as? Bool == true)
        let batches = try #require(object["batches"] as? [[String: Any]])
        #expect(batches.map { $0["batch"] as? Int } == [1, 3])
        for b in batches {
            let decode = try #require(b["decode_tokens_per_second"] as? [String: Any])
            #expect((decode["median"] as? Double ?? 0) > 0)
        }
    }

    @Test func benchRejectsABadBatchList() throws {
        for bad in ["0", "4,x", "", "2,,4"] {
            let r = try CLI.run(["bench", "--prompt-tokens", "4", "--gen-tokens", "1", "--repeat", "1", "--batch", bad])
            #expect(r.status == 2, "\(bad): \(r.stderr)")
            #expect(r.stderr.contains("--batch"), "\(bad): \(r.stderr)")
        }
    }
}
