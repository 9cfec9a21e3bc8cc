// The steering options `steer`, `logits` and `activations` share, on the default model: `--edit`
// reaches each action as its own flag does, an unknown action is exit 2 naming the known ones, and
// edits change `logits` and `activations` as the steering math says.

import Foundation
import ProbityFormats
import ProbityLM
import Testing

@Suite(.serialized) struct SteeringOptionsCLITests {
    static let pack = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("packs/smollm2-l15").path
    /// A text on which the pack's `gold` latent is active, so that scaling it changes something.
    static let text = "She has a heart of gold and a gold coin from the Golden Pavilion."

    /// The raw bytes of `logits --npy` (every position) with `options`, after checking it succeeded.
    func logits(_ options: [String], text: String = Self.text) throws -> Data {
        let npy = try CLI.scratch().appendingPathComponent("l.npy").path
        let r = try CLI.run(["logits", "--text", text, "--all-positions", "--npy", npy] + options)
        #expect(r.status == 0, "\(options): \(r.stderr)")
        return try Data(contentsOf: URL(fileURLWithPath: npy))
    }

    @Test func editGivesWhatEachActionsFlagGives() throws {
        let plain = try logits([])
        let pairs: [([String], [String])] = [
            (["--clamp", "gold=1.5x"], ["--edit", "clamp:gold=1.5x"]),
            (["--scale", "gold=3"], ["--edit", "scale:gold=3"]),
            (["--ablate", "gold"], ["--edit", "ablate:gold"]),
            (["--cap", "gold=0.1x"], ["--edit", "cap:gold=0.1x"]),
            (["--add", "gold=4"], ["--edit", "add:gold=4"]),
            (["--project-out", "gold"], ["--edit", "project_out:gold"]),
            (["--project-out", "gold"], ["--edit", "project-out:gold"]),
        ]
        for (flag, edit) in pairs {
            let a = try logits(["--pack", Self.pack] + flag)
            let b = try logits(["--pack", Self.pack] + edit)
            #expect(a == b, "\(flag) vs \(edit)")
            #expect(a != plain, "\(flag) changed nothing")
        }
    }

    @Test func steerGivesTheSameGenerationForAFlagAndItsEdit() throws {
        let common = ["steer", "--pack", Self.pack, "--user", "Where should I go on vacation?", "--max-tokens", "8", "--json"]
        let flag = try CLI.run(common + ["--clamp", "gold=1.5x"])
        let edit = try CLI.run(common + ["--edit", "clamp:gold=1.5x"])
        #expect(flag.status == 0 && edit.status == 0, "\(flag.stderr) \(edit.stderr)")
        #expect(!flag.stdout.isEmpty && flag.stdout == edit.stdout)
    }

    @Test func unknownOrMisshapenEditsAreExit2() throws {
        let unknown = try CLI.run(["steer", "--pack", Self.pack, "--edit", "nudge:gold=1", "--prompt", "Hi"])
        #expect(unknown.status == 2)
        #expect(unknown.stderr.contains("--edit: unknown action 'nudge' in 'nudge:gold=1' (known: ablate, add, cap, clamp, project_out, scale)"),
                "\(unknown.stderr)")
        let onLogits = try CLI.run(["logits", "--text", "Hi", "--pack", Self.pack, "--edit", "clamps:gold=1"])
        #expect(onLogits.status == 2 && onLogits.stderr.contains("unknown action 'clamps'"), "\(onLogits.stderr)")
        let noColon = try CLI.run(["logits", "--text", "Hi", "--pack", Self.pack, "--edit", "gold=1"])
        #expect(noColon.status == 2 && noColon.stderr.contains("expected ACTION:FEATURE=VALUE or ACTION:FEATURE, found 'gold=1'"),
                "\(noColon.stderr)")
        let noValue = try CLI.run(["logits", "--text", "Hi", "--pack", Self.pack, "--edit", "clamp:gold"])
        #expect(noValue.status == 2)
        #expect(noValue.stderr == "probity: error: 'gold': expected FEATURE=VALUE for --edit clamp\n", "\(noValue.stderr)")
        let noPack = try CLI.run(["activations", "--hook", "blocks.15.hook_resid_post", "--text", "Hi", "--edit", "ablate:3"])
        #expect(noPack.status == 2 && noPack.stderr.contains("feature edits need --pack"), "\(noPack.stderr)")
    }

    /// Without steering options `logits` is the model's plain forward pass, bit for bit (as it was
    /// before the options existed), and a pack given without an edit changes nothing.
    @Test func noEditIsThePlainForwardPass() throws {
        let text = "The capital of France is Paris. The capital of Germany is"
        let dir = try CLI.scratch()
        let npy = dir.appendingPathComponent("plain.npy").path
        let r = try CLI.run(["logits", "--text", text, "--npy", npy, "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let withPack = try CLI.run(["logits", "--text", text, "--npy", npy + "2", "--json", "--pack", Self.pack])
        #expect(withPack.stdout == r.stdout)
        #expect(try Data(contentsOf: URL(fileURLWithPath: npy)) == Data(contentsOf: URL(fileURLWithPath: npy + "2")))

        let loaded = try LoadedModel.load("default")
        let tokens = loaded.tokenizer.encode(text, addSpecial: false, parseSpecial: false)
        let expected = try loaded.model.makeSession(capacity: tokens.count).forward(tokens, logits: .last)
        let written = try NPY.read(path: npy).floats
        #expect(written.map(\.bitPattern) == expected.map(\.bitPattern))
    }

    /// A control vector exported from a directions pack steers `logits` exactly as `--add` with
    /// the pack's direction at the same strength: the same Float additions, so the same bits.
    @Test func controlVectorMatchesAddOnLogits() throws {
        let dir = try CLI.scratch()
        let pos = dir.appendingPathComponent("pos.jsonl"), neg = dir.appendingPathComponent("neg.jsonl")
        try Data("{\"text\": \"I love it, wonderful\"}\n{\"text\": \"Great, I am happy\"}\n".utf8).write(to: pos)
        try Data("{\"text\": \"I hate it, terrible\"}\n{\"text\": \"Awful, I am sad\"}\n".utf8).write(to: neg)
        let pack = dir.appendingPathComponent("joy").path
        let d = try CLI.run(["features", "derive", "--positive", pos.path, "--negative", neg.path,
                             "--hook", "blocks.10.hook_resid_post", "--at", "mean", "--out", pack])
        #expect(d.status == 0, "\(d.stderr)")
        let gguf = dir.appendingPathComponent("joy.gguf").path
        let e = try CLI.run(["features", "export-control-vector", pack, "--out", gguf])
        #expect(e.status == 0, "\(e.stderr)")

        let viaCV = try logits(["--control-vector", gguf + ":3"])
        let viaAdd = try logits(["--pack", pack, "--add", "joy=3"])
        let viaEdit = try logits(["--pack", pack, "--edit", "add:joy=3"])
        #expect(viaCV == viaAdd)
        #expect(viaEdit == viaAdd)
        #expect(viaCV != (try logits([])))
    }

    /// An edit on an SAE latent moves the activations at the pack's hook by W_dec[i]·(f' − f), f
    /// the latent's value encoded from the unedited activations: checked at one position against a
    /// recomputation from the SAE's own weights.
    @Test func latentEditMovesActivationsAsTheSteeringMathSays() throws {
        let dir = try CLI.scratch().appendingPathComponent("sae")
        let dSAE = 16, d = 576
        try FeaturesCLITests().writeSAE(dir, dSAE: dSAE)
        // The weights writeSAE draws, in its order: W_enc [d, dSAE], then W_dec [dSAE, d]; b_enc and
        // b_dec are zero, the architecture ReLU.
        var seed: UInt32 = 1
        func next() -> Double {
            seed = seed &* 1_664_525 &+ 1_013_904_223
            return Double(Float(Int(seed >> 9) % 2001 - 1000) / 20000)
        }
        let wEnc = (0..<(d * dSAE)).map { _ in next() }
        let wDec = (0..<(d * dSAE)).map { _ in next() }

        let hook = "blocks.15.hook_resid_post", text = "The cat sat on the mat."
        func activations(_ options: [String]) throws -> NPYArray {
            let npy = try CLI.scratch().appendingPathComponent("a.npy").path
            let r = try CLI.run(["activations", "--hook", hook, "--text", text, "--npy", npy] + options)
            #expect(r.status == 0, "\(r.stderr)")
            return try NPY.read(path: npy)
        }
        let plain = try activations([])
        let position = plain.shape[0] - 1
        let x = Array(plain.values[(position * d)..<((position + 1) * d)])
        let f = (0..<dSAE).map { i in max(0, (0..<d).reduce(0.0) { $0 + x[$1] * wEnc[$1 * dSAE + i] }) }
        let i = try #require(f.indices.max { f[$0] < f[$1] })
        #expect(f[i] > 0.1, "latent \(i) is not active enough to test with: \(f[i])")

        let edited = try activations(["--pack", dir.path, "--edit", "scale:\(i)=3"])
        let y = Array(edited.values[(position * d)..<((position + 1) * d)])
        let expected = (0..<d).map { j in x[j] + wDec[i * d + j] * (3 * f[i] - f[i]) }
        let moved = zip(y, x).map { abs($0 - $1) }.max() ?? 0
        let error = zip(y, expected).map { abs($0 - $1) }.max() ?? .infinity
        #expect(moved > 0.01, "the edit did not move the activations")
        #expect(error < 1e-4 * max(1, moved), "max |x' − expected| = \(error), moved \(moved)")
    }
}
