// Feature packs: manifest + labels + SAE or directions, bare SAELens directories, the compatibility
// checks run before any token, feature references and `Nx` values; and the SHA-256 they rely on.

import Foundation
import ProbityFormats
import ProbityTensor
import Testing
@testable import ProbityFeatures
@testable import ProbityLM

@Suite struct FeaturePackTests {
    let info = ModelInfo(architecture: "llama", blockCount: 2, width: 8, vocabularySize: 10, contextLength: 64)

    func writePack(sha: String? = nil, modelName: String? = "Tiny", hook: String = "blocks.1.hook_resid_post") throws -> URL {
        var fx = SAEFixture()
        let dir = try fx.write(to: try scratchDirectory())
        let manifest = PackManifest(name: "tiny-l1", kind: .sae, modelName: modelName, modelSHA256: sha, hook: hook)
        try manifest.jsonData().write(to: dir.appendingPathComponent("pack.json"))
        try FeatureLabels([FeatureLabel(id: "3", name: "golden gate", description: "the bridge", maxActivation: 2.5),
                           FeatureLabel(id: "5", name: "no max")]).write(to: dir.appendingPathComponent("labels.json").path)
        return dir
    }

    @Test func sha256KnownAnswers() throws {
        #expect(SHA256.hex([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hex(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
                == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        // Fed in uneven pieces, the same digest.
        let data = (0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        var s = SHA256()
        s.update(Array(data[0..<3])); s.update(Array(data[3..<200])); s.update(Array(data[200...]))
        #expect(s.finalize() == SHA256.hex(data))
        let file = try scratchDirectory().appendingPathComponent("f.bin")
        try Data(data).write(to: file)
        #expect(try SHA256.hex(file: file.path) == SHA256.hex(data))
    }

    @Test func saePackLoads() throws {
        let dir = try writePack()
        let pack = try FeaturePack.load(path: dir.path)
        #expect(pack.name == "tiny-l1" && pack.kind == .sae && pack.hook == .residPost(1))
        #expect(pack.labels[latent: 3]?.name == "golden gate")
        #expect(try pack.checkCompatibility(model: info, modelPath: "", modelName: "Tiny") == nil)
        guard case .latent(_, 3) = try pack.feature("golden gate") else { Issue.record("label lookup"); return }
        guard case .latent(_, 7) = try pack.feature("7") else { Issue.record("index lookup"); return }
        #expect(throws: FeatureError.latentOutOfRange(pack: "tiny-l1", index: 24, dSAE: 24)) { try pack.feature("24") }
        #expect(throws: FeatureError.unknownFeature(pack: "tiny-l1", name: "nope")) { try pack.feature("nope") }
    }

    @Test func actionsParseWithMaxActivationUnits() throws {
        let pack = try FeaturePack.load(path: try writePack().path)
        let iv = try pack.intervention("clamp", "3=10x")
        #expect(iv.action.brief == "clamp 25.0")
        #expect(try pack.intervention("scale", "golden gate=0.5").action.brief == "scale 0.5")
        #expect(try pack.intervention("ablate", "3").action is AblateAction)
        #expect(throws: FeatureError.noMaxActivation(pack: "tiny-l1", index: 5)) { try pack.intervention("clamp", "5=2x") }
        #expect(throws: FeatureError.self) { try pack.intervention("clamp", "3") }
        #expect(throws: FeatureError.self) { try pack.intervention("clamp", "3=abc") }
    }

    @Test func flagValuesReadWithTheRulesLevelParser() throws {
        let pack = try FeaturePack.load(path: try writePack().path)
        #expect(try pack.intervention("cap", "golden gate=0.5x").action.brief == "cap 1.25")   // 0.5 × max 2.5
        #expect(try pack.intervention("project-out", "3").action is ProjectOutAction)
        // A factor is a number, not a level; and the level grammar is the rules' (no hex, no 'X').
        #expect(throws: FeatureError.badAction(argument: "3=2x", reason: "expected a number, found '2x'")) {
            try pack.intervention("scale", "3=2x")
        }
        #expect(throws: FeatureError.badAction(argument: "3=2X", reason: "expected a number or Nx (N times the feature's max activation), found '2X'")) {
            try pack.intervention("clamp", "3=2X")
        }
        #expect(throws: FeatureError.badAction(argument: "3=1", reason: "expected FEATURE for --ablate")) { try pack.intervention("ablate", "3=1") }
        #expect(throws: FeatureError.badAction(argument: "3", reason: "expected FEATURE=VALUE for --cap")) { try pack.intervention("cap", "3") }
        #expect(throws: FeatureError.badAction(argument: "3=1", reason: "unknown action 'nudge'")) { try pack.intervention("nudge", "3=1") }
        // The feature is looked up before the value is judged, as before.
        #expect(throws: FeatureError.unknownFeature(pack: "tiny-l1", name: "nope")) { try pack.intervention("clamp", "nope=abc") }
    }

    @Test func levelsParseOneWay() {
        #expect(Level.parse("0.3x") == .relative(0.3))
        #expect(Level.parse("-4") == .absolute(-4))
        #expect(Level.parse("1e3") == .absolute(1000))
        #expect(Level.parse(".5x") == .relative(0.5))
        for bad in ["x", "010", "0x1F", "1_000", "2X", "inf", "nanx", "", " 1", "1x "] { #expect(Level.parse(bad) == nil, "\(bad)") }
        #expect(Level.relative(2).value(maxActivation: 2.5) == 5)
        #expect(Level.relative(2).value(maxActivation: nil) == nil)
    }

    @Test func aPlanRefusesALevelNotWorkedOut() throws {
        let pack = try FeaturePack.load(path: try writePack().path)
        let plan = FeaturePlan()
        #expect(throws: FeatureError.badAction(argument: "clamp 2x", reason: "the level '2x' was not worked out for the feature")) {
            try plan.add(Intervention(try pack.feature("3"), ClampAction(value: .relative(2))))
        }
    }

    @Test func bareSAELensDirectoryIsAPack() throws {
        var fx = SAEFixture(hook: "blocks.0.hook_mlp_out")
        let dir = try fx.write(to: try scratchDirectory().appendingPathComponent("my-sae"))
        let pack = try FeaturePack.load(path: dir.path)
        #expect(pack.manifest == nil && pack.name == "my-sae" && pack.hook == .mlpOut(0))
        #expect(try pack.checkCompatibility(model: info, modelPath: "", modelName: "anything") == nil)
    }

    @Test func compatibilityIsCheckedBeforeRunning() throws {
        let wide = ModelInfo(architecture: "llama", blockCount: 2, width: 16, vocabularySize: 10, contextLength: 64)
        let pack = try FeaturePack.load(path: try writePack().path)
        #expect(throws: FeatureError.widthMismatch(pack: "tiny-l1", dIn: 8, modelWidth: 16)) {
            try pack.checkCompatibility(model: wide, modelPath: "", modelName: "Tiny")
        }
        let deep = try FeaturePack.load(path: try writePack(hook: "blocks.9.hook_resid_post").path)
        #expect { try deep.checkCompatibility(model: info, modelPath: "", modelName: "Tiny") } throws: { error in
            guard case let FeatureError.unknownHook(_, hook, _) = error else { return false }
            return hook == "blocks.9.hook_resid_post"
        }
        #expect(throws: FeatureError.self) { try pack.checkCompatibility(model: info, modelPath: "", modelName: "Other") }
        let note = try pack.checkCompatibility(model: info, modelPath: "", modelName: "Other", allowModelMismatch: true)
        #expect(note == "the model is 'Other', the pack expects 'Tiny'")
    }

    @Test func modelMatchedBySHA256() throws {
        let model = try scratchDirectory().appendingPathComponent("m.gguf")
        try Data("not really a model".utf8).write(to: model)
        let digest = SHA256.hex(Array("not really a model".utf8))
        let good = try FeaturePack.load(path: try writePack(sha: digest, modelName: nil).path)
        #expect(try good.checkCompatibility(model: info, modelPath: model.path, modelName: "x") == nil)
        let bad = try FeaturePack.load(path: try writePack(sha: String(repeating: "0", count: 64), modelName: nil).path)
        #expect { try bad.checkCompatibility(model: info, modelPath: model.path, modelName: "x") } throws: { error in
            guard case FeatureError.modelMismatch = error else { return false }
            return true
        }
    }

    @Test func directionsPackRoundTrip() throws {
        let dir = try scratchDirectory()
        var rng = SplitMix64(4)
        let dirs = [Direction(name: "happy", point: .residPost(1), vector: rng.floats(8)),
                    Direction(name: "sad", point: .residPre(0), vector: rng.floats(8))]
        try FeaturePack.writeDirections(dirs, to: dir.appendingPathComponent("directions.safetensors").path)
        let manifest = PackManifest(name: "moods", kind: .directions, modelName: nil, modelSHA256: nil,
                                    hook: "blocks.1.hook_resid_post", labels: nil)
        try manifest.jsonData().write(to: dir.appendingPathComponent("pack.json"))
        let pack = try FeaturePack.load(path: dir.path)
        #expect(pack.directions == dirs)
        #expect(try pack.checkCompatibility(model: info, modelPath: "", modelName: nil) == nil)
        guard case .direction(let d) = try pack.feature("sad") else { Issue.record("direction lookup"); return }
        #expect(d.point == .residPre(0))
        #expect(try pack.intervention("add", "happy=3").action.brief == "add 3.0")
    }

    @Test func badManifests() throws {
        let dir = try scratchDirectory()
        #expect(throws: FeatureError.notAPack(path: dir.path)) { try FeaturePack.load(path: dir.path) }
        try Data(#"{"name": "x", "kind": "bananas", "hook": "hook_embed"}"#.utf8).write(to: dir.appendingPathComponent("pack.json"))
        #expect(throws: FeatureError.badManifest(path: dir.path + "/pack.json", key: "kind", expected: "sae, directions or probe", found: "bananas")) {
            try FeaturePack.load(path: dir.path)
        }
        try Data(#"{"name": "x", "kind": "directions", "hook": "hook_embed", "labels": "labels.json"}"#.utf8)
            .write(to: dir.appendingPathComponent("pack.json"))
        #expect(throws: FeatureError.self) { try FeaturePack.load(path: dir.path) }
    }

    @Test func packFilesAreStrictJSON() throws {
        // Each JSON file of a pack, made invalid in a way Foundation alone accepts, is refused with
        // its file, line:column and byte offset.
        let dir = try writePack()
        let labels = dir.appendingPathComponent("labels.json")
        let cfg = dir.appendingPathComponent("cfg.json")
        let pack = dir.appendingPathComponent("pack.json")
        let good = (labels: try Data(contentsOf: labels), cfg: try Data(contentsOf: cfg), pack: try Data(contentsOf: pack))
        _ = try FeaturePack.load(path: dir.path)
        let cases: [(URL, String, JSONSyntaxError)] = [
            (cfg, "{\n  \"d_in\": 8,\n}", JSONSyntaxError(path: cfg.path, what: "the file", offset: 15, line: 3, column: 1,
                expected: "a key in double quotes after ',' (trailing commas are not JSON)", found: "'}'")),
            (pack, "{\"name\": \"a\", \"name\": \"b\"}", JSONSyntaxError(path: pack.path, what: "the file", offset: 14, line: 1,
                column: 15, expected: "keys that differ within one object", found: "the key \"name\" a second time")),
            (labels, "{\"features\": [{\"id\": 3, \"max_activation\": NaN}]}", JSONSyntaxError(path: labels.path,
                what: "the file", offset: 42, line: 1, column: 43, expected: "a value", found: "'NaN'")),
        ]
        for (file, text, expected) in cases {
            try Data(text.utf8).write(to: file)
            #expect(throws: expected) { try FeaturePack.load(path: dir.path) }
            try good.labels.write(to: labels); try good.cfg.write(to: cfg); try good.pack.write(to: pack)
        }
    }
}
