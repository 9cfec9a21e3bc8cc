// Probe packs: the round trip through probe.safetensors and pack.json (with the training items'
// fingerprints), strict loading (shapes, tensors, dtypes, NaN, unknown keys, malformed items), the
// readout w·x + b, and a probe refusing to be edited.

import Foundation
import ProbityFormats
import Testing
@testable import ProbityFeatures
@testable import ProbityLM

@Suite struct ProbePackTests {
    let info = ModelInfo(architecture: "llama", blockCount: 4, width: 8, vocabularySize: 10, contextLength: 64)
    let point = HookPoint.residPost(2)
    let probe = Probe(name: "lies", point: .residPost(2), weights: [0.5, -1, 0, 2, 0.25, 0, -0.75, 1], bias: -0.3)

    func write(_ probe: Probe, items: [String] = []) throws -> URL {
        let dir = try scratchDirectory().appendingPathComponent("probe-lies")
        let fingerprints = items.map { ItemFingerprint.of(messages: [ChatMessage(role: .user, content: "q")], response: $0) }
        try FeaturePack.writeProbe(probe, to: dir.path, modelName: "Tiny", modelSHA256: String(repeating: "ab", count: 32),
                                   provenance: ["method": "test", "items": DerivationItems(fingerprints: fingerprints + fingerprints).jsonObject])
        return dir
    }

    /// Rewrites pack.json through `edit`.
    func editManifest(_ dir: URL, _ edit: (inout [String: Any]) -> Void) throws {
        let url = dir.appendingPathComponent("pack.json")
        var o = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as? [String: Any])
        edit(&o)
        try JSONSerialization.data(withJSONObject: o).write(to: url)
    }

    /// Rewrites probe.safetensors with these tensors.
    func writeTensors(_ dir: URL, _ tensors: [(String, [Int], [Float])], dtype16: Bool = false) throws {
        var w = SafeTensorsWriter()
        for (name, shape, values) in tensors {
            if dtype16 {
                try w.addTensor(name: name, dtype: .f16, shape: shape, data: values.flatMap { _ in [UInt8(0), UInt8(0x3c)] })
            } else {
                try w.addTensor(name: name, shape: shape, floats: values)
            }
        }
        try w.write(to: dir.appendingPathComponent("probe.safetensors").path)
    }

    @Test func roundTrip() throws {
        let dir = try write(probe, items: ["b", "a", "c"])
        let pack = try FeaturePack.load(path: dir.path)
        #expect(pack.kind == .probe && pack.name == "lies" && pack.hook == point && pack.width == 8)
        #expect(pack.probe == probe)
        #expect(try pack.checkCompatibility(model: info, modelPath: "", modelName: "Tiny",
                                            modelSHA256: String(repeating: "ab", count: 32)) == nil)
        guard case .probe(let p) = try pack.feature("lies") else { Issue.record("probe lookup"); return }
        #expect(p == probe)
        #expect(throws: FeatureError.unknownFeature(pack: "lies", name: "0")) { try pack.feature("0") }
        // The recorded items: three fingerprints, sorted and unique, under the scheme's name.
        let provenance = try #require(try JSONSerialization.jsonObject(with: Data((pack.manifest?.provenanceJSON ?? "").utf8)) as? [String: Any])
        let items = try #require(provenance["items"] as? [String: Any])
        #expect(items["scheme"] as? String == "probity-item-v1")
        let list = try #require(items["sha256"] as? [String])
        #expect(list.count == 3 && list == list.sorted())
        #expect(list.contains(ItemFingerprint.of(messages: [ChatMessage(role: .user, content: "q")], response: "a")))
        // Another model's width is refused before any token runs.
        let wide = ModelInfo(architecture: "llama", blockCount: 4, width: 16, vocabularySize: 10, contextLength: 64)
        #expect(throws: FeatureError.widthMismatch(pack: "lies", dIn: 8, modelWidth: 16)) {
            try pack.checkCompatibility(model: wide, modelPath: "", modelName: "Tiny", modelSHA256: String(repeating: "ab", count: 32))
        }
    }

    @Test func readoutIsTheLogit() throws {
        let rows: [[Float]] = [[1, 2, 3, 4, 5, 6, 7, 8], [-1, 0.5, 0, 0, 2, 1, -3, 0.125]]
        var values = rows.flatMap { $0 }
        var read: [Float] = []
        values.withUnsafeMutableBufferPointer { buf in
            guard let base = buf.baseAddress else { return }
            let acts = HookActivations(point: point, width: 8, count: 2, values: base, positions: 0..<2,
                                       tokens: [1, 2][...], origins: [TokenOrigin.prompt, .generated][...])
            read = (0..<2).map { FeatureTarget.probe(probe).activation(row: $0, of: acts) { _ in fatalError("no SAE") } }
        }
        for (r, x) in zip(read, rows) {
            let expected = zip(probe.weights, x).reduce(Double(probe.bias)) { $0 + Double($1.0) * Double($1.1) }
            #expect(abs(Double(r) - expected) < 1e-6)
        }
    }

    @Test func aProbeIsReadNotEdited() throws {
        let plan = FeaturePlan()
        #expect(throws: FeatureError.probeIsReadOnly(name: "lies", action: "clamp")) {
            try plan.add(Intervention(.probe(probe), .clamp(1)))
        }
        let pack = try FeaturePack.load(path: try write(probe).path)
        #expect(throws: FeatureError.self) { _ = try plan.add(try pack.intervention("add", "lies=2")) }
        // A monitor reads it at every position.
        let m = try plan.monitor(probe)
        let hooks = HookSet()
        try plan.attach(to: hooks, model: info)
        var values = [Float](repeating: 1, count: 8)
        try runHooks(hooks, at: point, blocks: 4, values: &values, width: 8)
        let expected = probe.weights.reduce(0.0) { $0 + Double($1) } + Double(probe.bias)
        #expect(m.records.count == 1 && abs(Double(m.records[0].value) - expected) < 1e-6)
    }

    @Test func badPacksAreRefusedWithTheirReason() throws {
        func expectError(_ contains: String, _ setUp: (URL) throws -> Void) throws {
            let dir = try write(probe)
            try setUp(dir)
            do {
                _ = try FeaturePack.load(path: dir.path)
                Issue.record("loaded a bad pack (\(contains))")
            } catch let e as FeatureError {
                #expect(e.description.contains(contains), "\(e.description)")
            }
        }
        try expectError("tensor weight: expected a 1-D vector [d_in], found shape [2, 4]") { try writeTensors($0, [("weight", [2, 4], [Float](repeating: 0, count: 8)), ("bias", [1], [0])]) }
        try expectError("tensor bias: expected shape [1], found [2]") { try writeTensors($0, [("weight", [8], [Float](repeating: 0, count: 8)), ("bias", [2], [0, 0])]) }
        try expectError("missing tensor 'bias'") { try writeTensors($0, [("weight", [8], [Float](repeating: 0, count: 8))]) }
        try expectError("unknown tensor 'scale'") {
            try writeTensors($0, [("weight", [8], [Float](repeating: 0, count: 8)), ("bias", [1], [0]), ("scale", [1], [1])])
        }
        try expectError("tensor weight holds a NaN or infinity at element 3") {
            try writeTensors($0, [("weight", [8], [0, 0, 0, .nan, 0, 0, 0, 0]), ("bias", [1], [0])])
        }
        try expectError("tensor weight: expected F32, found F16") {
            try writeTensors($0, [("weight", [8], [Float](repeating: 0, count: 8)), ("bias", [1], [0])], dtype16: true)
        }
        try expectError("unknown key 'directions'") { try editManifest($0) { $0["directions"] = "directions.safetensors" } }
        try expectError("no probe file 'missing.safetensors'") { try editManifest($0) { $0["probe"] = "missing.safetensors" } }
        try expectError("'provenance.items.scheme': expected 'probity-item-v1', found 'md5'") {
            try editManifest($0) { $0["provenance"] = ["items": ["scheme": "md5", "sha256": []]] }
        }
        try expectError("'provenance.items.sha256[1]': expected fingerprints sorted and unique") {
            try editManifest($0) { $0["provenance"] = ["items": ["scheme": "probity-item-v1", "sha256": [String(repeating: "b", count: 64), String(repeating: "a", count: 64)]]] }
        }
        try expectError("'provenance.items.sha256[0]': expected 64 lowercase hex digits") {
            try editManifest($0) { $0["provenance"] = ["items": ["scheme": "probity-item-v1", "sha256": [String(repeating: "A", count: 64)]]] }
        }
    }
}
