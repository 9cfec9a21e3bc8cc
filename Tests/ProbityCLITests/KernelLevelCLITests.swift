// The whole default model below the machine's best kernels: `probity logits --isa L` as one prompt
// and one position at a time (`--stepwise`, decode's kernels), against the float64 reference
// (Tests/Fixtures/reference). The kernels' products are tested at every level on their own; this
// holds what a CPU without AVX-512 (or without AVX2) computes for a real model, end to end. The
// level is process-wide, so it runs in the binary, not in this process.

import Foundation
import Testing
import ProbityFormats

@Suite struct KernelLevelCLITests {
    struct Prompt {
        var name: String
        var text: String
        var tokens: [Int]
        var f64File: String
    }

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/reference")

    /// The four reference prompts' `default` variants: the text tokenized with special tokens parsed
    /// and nothing added.
    static func prompts() throws -> [Prompt] {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("reference.json"))
        let root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let prompts = try #require(root["prompts"] as? [[String: Any]])
        return try prompts.map { p in
            let variants = try #require(p["variants"] as? [String: Any])
            let v = try #require(variants["default"] as? [String: Any])
            let file = try #require(v["logits_file"] as? String)
            return Prompt(name: try #require(p["name"] as? String), text: try #require(p["text"] as? String),
                          tokens: try #require(v["tokens"] as? [Int]),
                          f64File: file.replacingOccurrences(of: ".npy", with: "_f64ref.npy"))
        }
    }

    @Test(arguments: ["avx2", "generic"], [false, true])
    func matchesFloat64BelowTheBestLevel(level: String, stepwise: Bool) throws {
        let dir = try CLI.scratch()
        let prompts = try Self.prompts()
        #expect(prompts.count == 4)
        for p in prompts {
            let npy = dir.appendingPathComponent("\(p.name).npy").path
            let r = try CLI.run(["logits", "--text", p.text, "--parse-special", "--isa", level, "--top", "1",
                                 "--json", "--npy", npy] + (stepwise ? ["--stepwise"] : []))
            #expect(r.status == 0, "\(r.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            #expect(object["tokens"] as? [Int] == p.tokens, "\(p.name): tokens")
            let ours = try NPY.read(path: npy).values
            let ref = try NPY.read(path: Self.fixtures.appendingPathComponent(p.f64File).path).values
            try #require(ours.count == ref.count)
            var diff = 0.0, norm = 0.0
            for i in ref.indices {
                diff += (ours[i] - ref[i]) * (ours[i] - ref[i])
                norm += ref[i] * ref[i]
            }
            let rel = (diff / norm).squareRoot()
            let label = "\(p.name) at \(level)\(stepwise ? ", stepwise" : "")"
            #expect(rel <= 2e-3, "\(label): rel L2 \(rel) vs float64")
            #expect(ours.indices.max { ours[$0] < ours[$1] } == ref.indices.max { ref[$0] < ref[$1] }, "\(label): top-1")
            print("kernel level \(label): rel L2 vs f64 \(String(format: "%.2e", rel))")
        }
    }
}
