// Every prefix and thousands of random byte flips of small valid files: parsing must either
// succeed or throw a FormatError (or, for a safetensors header, a JSONSyntaxError), never trap,
// hang or throw anything else.

import Testing
import ProbityFormats
import ProbityTensor  // SplitMix64, the seeded generator every test uses, so failures reproduce

@Suite struct FormatFuzzTests {
    static func sampleGGUF() throws -> [UInt8] {
        var w = GGUFWriter(alignment: 16)
        try w.set("general.architecture", .string("llama"))
        try w.set("tokenizer.ggml.tokens", .array([.string("a"), .string("bc")]))
        try w.set("nested", .array([.array([.uint16(1)]), .array([.float64(2)])]))
        try w.set("flag", .bool(true))
        try w.addTensor(name: "w", type: .q4_1, shape: [32, 2], data: [UInt8](repeating: 3, count: 40))
        try w.addTensor(name: "n", shape: [3], floats: [1, 2, 3])
        return w.bytes()
    }

    static func sampleSafeTensors() throws -> [UInt8] {
        var w = SafeTensorsWriter()
        w.metadata = ["k": "v"]
        try w.addTensor(name: "a", shape: [2, 2], floats: [1, 2, 3, 4])
        try w.addTensor(name: "b", dtype: .bf16, shape: [3], data: [0, 0, 0, 0, 0, 0])
        return try w.bytes()
    }

    /// Parses and reports whether the outcome was allowed (success, a FormatError or a JSONSyntaxError).
    static func parsesOrFormatError(_ parse: () throws -> Void) -> (ok: Bool, threw: Bool) {
        do {
            try parse()
            return (true, false)
        } catch is FormatError, is JSONSyntaxError {
            return (true, true)
        } catch {
            return (false, true)
        }
    }

    @Test func everyPrefixOfAGGUFFails() throws {
        let full = try Self.sampleGGUF()
        let f = try GGUFFile(bytes: full, name: "ok.gguf")
        // Padding after the last tensor's data is optional; anything shorter than that must fail.
        let end = f.tensors.map { f.dataOffset + $0.offset + $0.byteCount }.max() ?? 0
        #expect(end > full.count - 16 && end < full.count)
        for n in 0..<full.count {
            let r = Self.parsesOrFormatError { _ = try GGUFFile(bytes: Array(full.prefix(n)), name: "p.gguf") }
            #expect(r.ok && r.threw == (n < end), "prefix of \(n) bytes")
        }
    }

    @Test func randomFlipsOfAGGUF() throws {
        let full = try Self.sampleGGUF()
        var rng = SplitMix64(seed: 42)
        for i in 0..<3000 {
            var b = full
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let at = Int.random(in: 0..<b.count, using: &rng)
                b[at] = UInt8.random(in: 0...255, using: &rng)
            }
            let r = Self.parsesOrFormatError {
                let f = try GGUFFile(bytes: b, name: "f.gguf")
                for t in f.tensors { _ = f.data(for: t).count }
            }
            #expect(r.ok, "mutation \(i)")
        }
    }

    @Test func prefixesAndFlipsOfSafeTensors() throws {
        let full = try Self.sampleSafeTensors()
        for n in 0..<full.count {
            let r = Self.parsesOrFormatError { _ = try SafeTensorsFile(bytes: Array(full.prefix(n)), name: "p.safetensors") }
            #expect(r.ok && r.threw, "prefix of \(n) bytes")
        }
        var rng = SplitMix64(seed: 7)
        for i in 0..<2000 {
            var b = full
            let at = Int.random(in: 0..<b.count, using: &rng)
            b[at] = UInt8.random(in: 0...255, using: &rng)
            let r = Self.parsesOrFormatError {
                let f = try SafeTensorsFile(bytes: b, name: "f.safetensors")
                for t in f.tensors where [.f32, .f16, .bf16, .f64].contains(t.dtype) { _ = try f.floats(for: t) }
            }
            #expect(r.ok, "mutation \(i)")
        }
    }

    @Test func prefixesAndFlipsOfNPY() throws {
        let full = try NPY.encode([1, 2, 3, 4, 5, 6], shape: [3, 2])
        for n in 0..<full.count {
            let r = Self.parsesOrFormatError { _ = try NPY.decode(bytes: Array(full.prefix(n)), name: "p.npy") }
            #expect(r.ok && r.threw, "prefix of \(n) bytes")
        }
        var rng = SplitMix64(seed: 9)
        for i in 0..<2000 {
            var b = full
            let at = Int.random(in: 0..<min(b.count, 140), using: &rng)
            b[at] = UInt8.random(in: 0...255, using: &rng)
            let r = Self.parsesOrFormatError { _ = try NPY.decode(bytes: b, name: "f.npy") }
            #expect(r.ok, "mutation \(i)")
        }
    }
}
