// The whole default model below the machine's best kernels: `probity logits --isa L` as one prompt
// and one position at a time (`--stepwise`, decode's kernels), against the float64 reference
// (Tests/Fixtures/reference). The kernels' products are tested at every level on their own; this
// holds what a CPU without AVX-512 (or without AVX2) computes for a real model, end to end. The
// level is process-wide, so it runs in the binary, not in this process.

import Foundation
import Testing
import ProbityFormats
import ProbityTestSupport

@Suite struct KernelLevelCLITests {
    /// The four reference prompts' `default` variants: the text tokenized with special tokens
    /// parsed and nothing added.
    @Test(arguments: ["avx2", "generic"], [false, true])
    func matchesFloat64BelowTheBestLevel(level: String, stepwise: Bool) throws {
        let dir = try CLI.scratch()
        let prompts = try Reference.variants().filter { $0.variant == "default" }
        #expect(prompts.count == 4)
        for p in prompts {
            let npy = dir.appendingPathComponent("\(p.prompt).npy").path
            let r = try CLI.run(["logits", "--text", p.text, "--parse-special", "--isa", level, "--top", "1",
                                 "--json", "--npy", npy] + (stepwise ? ["--stepwise"] : []))
            #expect(r.status == 0, "\(r.stderr)")
            let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
            #expect(object["tokens"] as? [Int] == p.tokens, "\(p.prompt): tokens")
            let ours = try NPY.read(path: npy).floats
            let ref = try Reference.vector(p.f64File)
            try #require(ours.count == ref.count)
            let rel = relativeL2(ours, ref)
            let label = "\(p.prompt) at \(level)\(stepwise ? ", stepwise" : "")"
            #expect(rel <= 2e-3, "\(label): rel L2 \(rel) vs float64")
            #expect(argmax(ours) == argmax(ref), "\(label): top-1")
            print("kernel level \(label): rel L2 vs f64 \(String(format: "%.2e", rel))")
        }
    }
}
