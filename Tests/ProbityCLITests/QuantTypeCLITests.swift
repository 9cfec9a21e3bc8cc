// Quantized files through the real binary: a low-bit file llama.cpp wrote runs, and a tensor type
// Probity has no kernels for is refused at load with the types it has (exit 2, one message).

import Foundation
import Testing
import ProbityFormats
import ProbityTestSupport

@Suite struct QuantTypeCLITests {
    /// The default model with blk.3.ffn_up.weight stored as MXFP4 (a valid type, 17-byte blocks of 32).
    @Test func unsupportedTypeIsRefusedWithTheSupportedList() throws {
        let gguf = try GGUFFile(path: try TestData.defaultModelPath())
        var w = GGUFWriter(name: "mxfp4.gguf")
        for key in gguf.metadataKeys where key != GGUFKey.alignment {
            if let value = gguf.metadata[key] { try w.set(key, value) }
        }
        for t in gguf.tensors {
            if t.name == "blk.3.ffn_up.weight" {
                let rows = t.shape[1], blocks = t.shape[0] / 32
                try w.addTensor(name: t.name, type: .mxfp4, shape: t.shape, data: [UInt8](repeating: 0, count: rows * blocks * 17))
            } else {
                try w.addTensor(name: t.name, type: t.type, shape: t.shape, data: Array(gguf.data(for: t)))
            }
        }
        let path = try CLI.scratch().appendingPathComponent("mxfp4.gguf").path
        try w.write(to: path)
        let r = try CLI.run(["logits", path, "--text", "Hello"])
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("tensor blk.3.ffn_up.weight has type MXFP4, which Probity cannot compute with;"
                                  + " expected one of F32, F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,"
                                  + " IQ4_NL, IQ4_XS, BF16"), "\(r.stderr)")
        #expect(r.stderr.split(separator: "\n").count == 1, "one message: \(r.stderr)")
    }

    /// llama.cpp's Q2_K mix (Q3_K in ffn_down, Q4_0 elsewhere) and IQ4_XS (IQ4_XS and IQ4_NL) answer
    /// as the default model does. (Q2_K_PURE, 2-bit in every 256-column matrix, no longer answers at
    /// all, in llama.cpp either: its tests compare logits instead, QuantReferenceTests.)
    @Test(arguments: ["Q2_K", "IQ4_XS"])
    func lowBitFilesAnswer(_ type: String) throws {
        let path = try TestData.cacheFile("quant-models/SmolLM2-135M-Instruct.\(type).gguf",
                                          what: "the default model requantized to \(type) (scripts/quant-models)",
                                          setup: "scripts/setup --models")
        let r = try CLI.run(["generate", path, "--user", "What is the capital of France?", "--max-tokens", "24"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("Paris"), "\(r.stdout)")
    }
}
