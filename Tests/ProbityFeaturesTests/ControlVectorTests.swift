// llama.cpp control vectors: export and re-import bit-identically, the metadata llama.cpp's tools
// write, llama.cpp's load checks (each a specific error), and equivalence with `add` on directions.

import Foundation
import ProbityFormats
import ProbityTensor
import Testing
@testable import ProbityFeatures
@testable import ProbityLM

@Suite struct ControlVectorTests {
    func sample(width: Int = 8) -> ControlVector {
        var rng = SplitMix64(11)
        // Values off the F16 grid too, so a lossy path would show.
        return ControlVector(modelHint: "llama", width: width,
                             directions: [1: rng.floats(width).map { $0 / 3 }, 4: rng.floats(width).map { $0 * .pi }])
    }

    @Test func exportReimportsBitIdentically() throws {
        let cv = sample()
        let path = try scratchDirectory().appendingPathComponent("cv.gguf").path
        try cv.write(to: path)
        let back = try ControlVector.load(path: path)
        #expect(back == cv)
        for (layer, v) in cv.directions {
            #expect(back.directions[layer]?.map(\.bitPattern) == v.map(\.bitPattern))
        }
        let file = try GGUFFile(path: path)
        #expect(file.value("general.architecture")?.stringValue == "controlvector")
        #expect(file.value("controlvector.model_hint")?.stringValue == "llama")
        #expect(file.value("controlvector.layer_count")?.intValue == 2)
        #expect(file.tensors.map(\.name).sorted() == ["direction.1", "direction.4"])
    }

    /// Writes a GGUF with the given tensors for the malformed-file tests.
    func write(_ tensors: [(String, GGMLType, [Int])]) throws -> String {
        var w = GGUFWriter()
        try w.set("general.architecture", .string("controlvector"))
        for (name, type, shape) in tensors {
            let n = shape.reduce(1, *)
            try w.addTensor(name: name, type: type, shape: shape, data: [UInt8](repeating: 0, count: n * (type == .f32 ? 4 : 2)))
        }
        let path = try scratchDirectory().appendingPathComponent("bad.gguf").path
        try w.write(to: path)
        return path
    }

    @Test func directionZeroIsRejected() throws {
        let path = try write([("direction.0", .f32, [8])])
        #expect(throws: FeatureError.controlVectorLayerZero(path: path)) { try ControlVector.load(path: path) }
    }

    @Test func nonF32IsRejected() throws {
        let path = try write([("direction.2", .f16, [8])])
        #expect(throws: FeatureError.controlVectorTensorType(path: path, name: "direction.2", found: GGMLType.f16.name)) {
            try ControlVector.load(path: path)
        }
    }

    @Test func otherBadFiles() throws {
        let twoD = try write([("direction.2", .f32, [4, 2])])
        #expect(throws: FeatureError.controlVectorShape(path: twoD, name: "direction.2", found: [4, 2])) { try ControlVector.load(path: twoD) }
        let widths = try write([("direction.1", .f32, [8]), ("direction.2", .f32, [6])])
        #expect(throws: FeatureError.controlVectorWidth(path: widths, name: "direction.2", expected: 8, found: 6)) {
            try ControlVector.load(path: widths)
        }
        let named = try write([("steer.3", .f32, [8])])
        #expect(throws: FeatureError.controlVectorTensorName(path: named, name: "steer.3")) { try ControlVector.load(path: named) }
        let empty = try write([])
        #expect(throws: FeatureError.controlVectorEmpty(path: empty)) { try ControlVector.load(path: empty) }
    }

    @Test func layersPastTheModelAreRejected() throws {
        let info = ModelInfo(architecture: "llama", blockCount: 3, width: 8, vocabularySize: 10, contextLength: 16)
        #expect(throws: FeatureError.controlVectorLayer(path: "cv.gguf", layer: 4, blocks: 3)) {
            try sample().validate(for: info, path: "cv.gguf")
        }
    }

    /// Loading a control vector with strength s is the same edit as `add s` on its directions.
    @Test func sameAsAddingDirections() throws {
        let cv = sample()
        let info = ModelInfo(architecture: "llama", blockCount: 6, width: 8, vocabularySize: 10, contextLength: 16)
        func run(_ ivs: [Intervention]) throws -> [[Float]] {
            let plan = FeaturePlan()
            for iv in ivs { try plan.add(iv) }
            let hooks = HookSet()
            try plan.attach(to: hooks, model: info)
            var rng = SplitMix64(5)
            var outs: [[Float]] = []
            for layer in 0..<6 {
                var x = rng.floats(16)
                try runHooks(hooks, at: .residPost(layer), blocks: 6, values: &x, width: 8)
                outs.append(x)
            }
            return outs
        }
        let byFile = try run(cv.interventions(strength: 1.5))
        let byAdd = try run(cv.directions.map { Intervention(.direction(Direction(name: "v", point: .residPost($0.key), vector: $0.value)), .add(1.5)) })
        #expect(byFile == byAdd)
        var rng = SplitMix64(5)
        let plain = (0..<6).map { _ in rng.floats(16) }
        #expect(byFile[0] == plain[0] && byFile[2] == plain[2] && byFile[1] != plain[1])
    }

    @Test func roundTripThroughDirections() throws {
        let cv = sample()
        let again = try ControlVector(directions: cv.namedDirections(), modelHint: "llama")
        #expect(again == cv)
        #expect(throws: FeatureError.self) {
            try ControlVector(directions: [Direction(name: "x", point: .residPost(0), vector: [1])], modelHint: nil)
        }
    }

    @Test func argumentParsing() throws {
        #expect(try ControlVector.parseArgument("a.gguf") == ("a.gguf", 1))
        #expect(try ControlVector.parseArgument("dir/a.gguf:-0.5") == ("dir/a.gguf", -0.5))
        #expect(throws: FeatureError.controlVectorArgument(":2")) { try ControlVector.parseArgument(":2") }
    }
}
