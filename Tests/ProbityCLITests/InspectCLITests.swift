// `probity inspect` through the real binary: the default model's facts in JSON and text, small
// generated files, and malformed files that must exit 2 with one line naming the file.

import Foundation
import Testing
import ProbityFormats
import ProbityTestSupport

@Suite struct InspectCLITests {
    func json(_ r: CLIResult) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
    }

    @Test func defaultModelJSON() throws {
        _ = try TestData.defaultModelPath()
        let r = try CLI.run(["inspect", "default", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let j = try json(r)
        #expect(j["format"] as? String == "gguf")
        #expect(j["architecture"] as? String == "llama")
        let hp = try #require(j["hyperparameters"] as? [String: Any])
        #expect(hp["block_count"] as? Int == 30)
        #expect(hp["embedding_length"] as? Int == 576)
        #expect(hp["head_count"] as? Int == 9 && hp["head_count_kv"] as? Int == 3 && hp["head_dim"] as? Int == 64)
        #expect(hp["vocab_size"] as? Int == 49152)
        #expect(j["tensor_count"] as? Int == 272)
        #expect((j["tensors"] as? [Any])?.count == 272)
        let tok = try #require(j["tokenizer"] as? [String: Any])
        #expect(tok["pre"] as? String == "smollm" && tok["chat_template"] as? Bool == true)
        let special = try #require(tok["special_tokens"] as? [[String: Any]])
        #expect(special.contains { $0["role"] as? String == "bos" && $0["id"] as? Int == 1 && $0["text"] as? String == "<|im_start|>" })
        let types = try #require(j["tensor_types"] as? [String: [String: Int]])
        #expect(types["Q4_1"]?["count"] == 210 && types["Q8_0"]?["count"] == 1 && types["F32"]?["count"] == 61)
        // Sorted keys: the first top-level key alphabetically comes first.
        #expect(r.stdout.drop { $0 != "\"" }.hasPrefix("\"alignment\""))
    }

    @Test func defaultModelText() throws {
        _ = try TestData.defaultModelPath()
        let r = try CLI.run(["inspect"])
        #expect(r.status == 0)
        #expect(r.stdout.contains("architecture: llama"))
        #expect(r.stdout.contains("tensors: 272"))
        #expect(r.stdout.contains("token_embd.weight"))
        #expect(r.stdout.contains("bos token             1 \"<|im_start|>\""))
    }

    @Test func smallGeneratedFiles() throws {
        let dir = try CLI.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        var g = GGUFWriter()
        try g.set("general.architecture", .string("llama"))
        try g.set("llama.block_count", .uint32(2))
        try g.addTensor(name: "direction.1", shape: [4], floats: [1, 2, 3, 4])
        let gguf = dir.appendingPathComponent("cv.gguf").path
        try g.write(to: gguf)
        let rg = try CLI.run(["inspect", gguf, "--json"])
        #expect(rg.status == 0, "\(rg.stderr)")
        let jg = try json(rg)
        #expect((jg["hyperparameters"] as? [String: Any])?["block_count"] as? Int == 2)
        #expect((jg["hyperparameters"] as? [String: Any])?["head_count"] is NSNull)
        #expect(jg["parameter_count"] as? Int == 4)

        var s = SafeTensorsWriter()
        s.metadata = ["hook_name": "blocks.3.hook_resid_post"]
        try s.addTensor(name: "W_dec", shape: [2, 3], floats: [1, 2, 3, 4, 5, 6])
        let st = dir.appendingPathComponent("sae_weights.safetensors").path
        try s.write(to: st)
        let rs = try CLI.run(["inspect", st, "--json"])
        #expect(rs.status == 0, "\(rs.stderr)")
        let js = try json(rs)
        #expect(js["format"] as? String == "safetensors")
        #expect((js["metadata"] as? [String: String])?["hook_name"] == "blocks.3.hook_resid_post")
        let t = try #require((js["tensors"] as? [[String: Any]])?.first)
        #expect(t["name"] as? String == "W_dec" && t["type"] as? String == "F32" && t["shape"] as? [Int] == [2, 3])
        let text = try CLI.run(["inspect", st])
        #expect(text.status == 0 && text.stdout.contains("hook_name = \"blocks.3.hook_resid_post\""))
    }

    /// Writes `bytes` to `name` in a scratch directory, runs inspect on it, and checks the contract:
    /// exit 2, nothing on stdout, one line on stderr that names the file.
    func expectBadInput(_ name: String, _ bytes: [UInt8], mentions: String) throws {
        let dir = try CLI.scratch()
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent(name).path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        let r = try CLI.run(["inspect", path])
        #expect(r.status == 2)
        #expect(r.stdout.isEmpty)
        let lines = r.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(r.stderr)")
        #expect(r.stderr.hasPrefix("probity: error: \(path): "))
        #expect(r.stderr.contains(mentions), "\(r.stderr)")
    }

    @Test func malformedFilesExitTwo() throws {
        try expectBadInput("bad.gguf", Array("GGML".utf8) + [UInt8](repeating: 0, count: 20), mentions: "expected the GGUF magic")
        var trunc: [UInt8] = Array("GGUF".utf8) + [3, 0, 0, 0]
        trunc += [0, 0, 0, 0, 0, 0, 0, 0] + [1, 0, 0, 0, 0, 0, 0, 0]  // no tensors, one pair
        trunc += [255, 255, 255, 255, 255, 255, 255, 127] + [UInt8](repeating: 0, count: 8)
        try expectBadInput("trunc.gguf", trunc, mentions: "offset 24: metadata key length 9223372036854775807 exceeds the 8 bytes left in the file")
        var dup = GGUFWriter()
        try dup.set("a", .uint8(1))
        var bytes = dup.bytes()
        bytes[16] = 2                                  // claim two pairs ...
        bytes += bytes[24...]                          // ... and repeat the first
        try expectBadInput("dup.gguf", bytes, mentions: "duplicate metadata key 'a'")
        let json = Array("{\"t\": {".utf8)
        var st: [UInt8] = [UInt8(json.count), 0, 0, 0, 0, 0, 0, 0]
        st += json
        try expectBadInput("bad.safetensors", st, mentions: "header is not valid JSON")
    }

    @Test func strictFilesExitTwo() throws {
        // A safetensors header with a trailing comma: Foundation alone accepts it; safetensors does not.
        let entry = #"{"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},}"#
        var st: [UInt8] = [UInt8(entry.utf8.count), 0, 0, 0, 0, 0, 0, 0]
        st += Array(entry.utf8) + [0, 0, 0, 0]
        try expectBadInput("comma.safetensors", st, mentions: "offset \(8 + entry.utf8.count - 1): header is not valid JSON: "
                           + "expected a key in double quotes after ',' (trailing commas are not JSON), found '}'")
        // A GGUF whose first tensor's shape (8 floats, 32 bytes) is smaller than the gap to the next offset.
        func u32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func u64(_ v: UInt64) -> [UInt8] { withUnsafeBytes(of: v.littleEndian) { Array($0) } }
        func info(_ name: String, offset: UInt64) -> [UInt8] {
            u64(UInt64(name.utf8.count)) + Array(name.utf8) + u32(1) + u64(8) + u32(0) + u64(offset)
        }
        var gguf = Array("GGUF".utf8) + u32(3) + u64(2) + u64(0) + info("a", offset: 0) + info("b", offset: 64)
        gguf += [UInt8](repeating: 0, count: (32 - gguf.count % 32) % 32 + 96)
        try expectBadInput("gap.gguf", gguf, mentions: "tensor 'b': data offset 64, expected 32, where tensor 'a' ends")
    }

    @Test func missingFileExitsTwo() throws {
        let r = try CLI.run(["inspect", "/nonexistent/model.gguf"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("/nonexistent/model.gguf"))
    }
}
