// Compiling rules against packs and a (described) model, and running the detection and steering
// hooks on hand-made activations: small packs written to a scratch directory, a 4-wide "model".

import Foundation
import ProbityFeatures
import ProbityFormats
import Testing
@testable import ProbityLM
@testable import ProbityRules

/// A 2-block, 4-wide model description; no weights are needed to compile or to run hooks.
private let model = ModelInfo(architecture: "llama", blockCount: 2, width: 4, vocabularySize: 16, contextLength: 64)
private let block1 = HookPoint(name: "blocks.1.hook_resid_post")!
private let block0 = HookPoint(name: "blocks.0.hook_resid_post")!

/// A scratch directory with a directions pack `dirs` (d1 = e0, max 2; d2 = e1, max 4, at block 1)
/// and an SAE pack `sae` whose latent i is ReLU(x_i) (i < 3; latent 2 labelled `third`, max 3).
private func makePacks(width: Int = 4, modelName: String? = nil) throws -> URL {
    let root = FileManager.default.temporaryDirectory.appendingPathComponent("probity-rules-\(UUID().uuidString)")
    let dirs = root.appendingPathComponent("dirs").path, sae = root.appendingPathComponent("sae").path
    for d in [dirs, sae] { try FileManager.default.createDirectory(atPath: d, withIntermediateDirectories: true) }

    func unit(_ i: Int) -> [Float] { (0..<width).map { $0 == i ? 1 : 0 } }
    try FeaturePack.writeDirections([Direction(name: "d1", point: block1, vector: unit(0)),
                                     Direction(name: "d2", point: block1, vector: unit(1))], to: dirs + "/directions.safetensors")
    try PackManifest(name: "dirs", kind: .directions, modelName: modelName, modelSHA256: nil, hook: block1.name,
                     directions: "directions.safetensors").jsonData().write(to: URL(fileURLWithPath: dirs + "/pack.json"))
    try FeatureLabels([FeatureLabel(id: "d1", name: "d1", maxActivation: 2), FeatureLabel(id: "d2", name: "d2", maxActivation: 4)])
        .write(to: dirs + "/labels.json")

    let dSAE = 3
    var wEnc = [Float](repeating: 0, count: width * dSAE), wDec = [Float](repeating: 0, count: dSAE * width)
    for i in 0..<dSAE { wEnc[i * dSAE + i] = 1; wDec[i * width + i] = 1 }
    var w = SafeTensorsWriter()
    try w.addTensor(name: "W_enc", shape: [width, dSAE], floats: wEnc)
    try w.addTensor(name: "b_enc", shape: [dSAE], floats: [0, 0, 0])
    try w.addTensor(name: "W_dec", shape: [dSAE, width], floats: wDec)
    try w.addTensor(name: "b_dec", shape: [width], floats: [Float](repeating: 0, count: width))
    try w.write(to: sae + "/sae_weights.safetensors")
    let cfg: [String: Any] = ["d_in": width, "d_sae": dSAE, "architecture": "standard", "apply_b_dec_to_input": false,
                              "normalize_activations": "none", "metadata": ["hook_name": block1.name]]
    try JSONSerialization.data(withJSONObject: cfg).write(to: URL(fileURLWithPath: sae + "/cfg.json"))
    try PackManifest(name: "sae", kind: .sae, modelName: modelName, modelSHA256: nil, hook: block1.name)
        .jsonData().write(to: URL(fileURLWithPath: sae + "/pack.json"))
    try FeatureLabels([FeatureLabel(id: "2", name: "third", maxActivation: 3)]).write(to: sae + "/labels.json")
    return root
}

/// Writes a rules file using both packs, with `rules` (YAML text of the `rules:` list items).
private func rulesFile(in root: URL, _ rules: String) throws -> String {
    let path = root.appendingPathComponent("rules.yaml").path
    try ("""
        schema_version: 1
        packs:
          - {name: dirs, path: dirs}
          - {name: sae, path: sae}
        rules:

        """ + rules).write(toFile: path, atomically: true, encoding: .utf8)
    return path
}

private func compile(_ rules: String, allowModelMismatch: Bool = false, packWidth: Int = 4,
                     packModel: String? = nil, registry: PluginRegistry = .standard) throws -> CompiledRules {
    let root = try makePacks(width: packWidth, modelName: packModel)
    return try CompiledRules.compile(files: [try rulesFile(in: root, rules)], model: model, modelPath: "unused.gguf",
                                     modelName: "SmolLM2", registry: registry, allowModelMismatch: allowModelMismatch)
}

/// Runs the hooks at `point` over rows of activations (each `model.width` wide), as one forward
/// step at positions `start…`, and returns the rows as the hooks left them.
@discardableResult
private func step(_ run: RuleRun, _ rows: [[Float]], at point: HookPoint = block1, start: Int,
                  origin: TokenOrigin) throws -> [[Float]] {
    var values = rows.flatMap { $0 }
    let table = try run.hooks.slots(blocks: model.blockCount)
    guard let slot = point.slot(blocks: model.blockCount), let attached = table[slot] else { return rows }
    let tokens = Array(start..<(start + rows.count))
    let origins = Array(repeating: origin, count: rows.count)
    values.withUnsafeMutableBufferPointer { buf in
        let acts = HookActivations(point: point, width: model.width, count: rows.count, values: buf.baseAddress!,
                                   positions: start..<(start + rows.count), tokens: tokens[...], origins: origins[...])
        for h in attached { h(acts) }
    }
    return stride(from: 0, to: values.count, by: model.width).map { Array(values[$0..<($0 + model.width)]) }
}

/// Rows whose d1 projection (x_0) is each of `v`.
private func d1(_ v: [Float]) -> [[Float]] { v.map { [$0, 0.5, 0, 0] } }

@Suite struct CompiledRulesTests {
    @Test func compilesToTheExpectedPlan() throws {
        let compiled = try compile("""
              - id: r
                description: both
                severity: high
                watch:
                  any:
                    - {pack: dirs, direction: d1}
                    - {pack: sae, label: third}
                detect: {threshold: 0.5x, scope: {last: 3}, min_tokens: 2, aggregate: count}
                intervene:
                  - {action: scale, factor: 0.25, trigger: after_fire, positions: response}
                  - action: clamp
                    value: 2x
                    feature: {pack: dirs, direction: d2}
                    trigger: {while: {feature: {pack: sae, latent: 0}, threshold: 0.5}}
                    positions: {last: 1}
                stop: true
            """)
        #expect(compiled.rules.count == 1)
        let r = try #require(compiled.rules.first)
        #expect(r.id == "r" && r.rule.stop)
        #expect(r.features.map(\.label) == ["d1", "sae[2]"])
        #expect(r.features.map(\.threshold) == [1.0, 1.5])       // 0.5 × 2 and 0.5 × 3
        #expect(r.features.map(\.target.point) == [block1, block1])
        #expect(r.detector.scope == .last(3) && r.detector.minTokens == 2 && r.detector.aggregate == .count)

        // scale goes to each watched feature; clamp 2x is 2 × d2's max activation 4.
        #expect(r.interventions.count == 3)
        #expect(r.interventions.map(\.target.label) == ["d1", "sae[2]", "d2"])
        #expect(r.interventions.map(\.action.brief) == ["scale 0.25", "scale 0.25", "clamp 8.0"])
        #expect(r.interventions.map(\.positions) == [.generated, .generated, .last(1)])
        for iv in r.interventions.prefix(2) {
            guard case .afterFire = iv.when else { Issue.record("expected after_fire, found \(iv.when)"); continue }
        }
        guard case .whileActive(let c) = r.interventions[2].when else { Issue.record("expected while"); return }
        #expect(c.target.label == "sae[0]" && c.threshold == 0.5 && c.inclusive)

        #expect(compiled.packs.map(\.name) == ["dirs", "sae"])
        let manifest = compiled.packs[0].path + "/pack.json"
        #expect(compiled.packs[0].files.map(\.name) == ["directions.safetensors", "labels.json", "pack.json"])
        #expect(compiled.packs[0].files.last?.sha256 == (try SHA256.hex(file: manifest)))
    }

    /// An action defined only in the tests (`ShiftAction`, RegistryTests.swift) and registered in a
    /// registry instance parses from YAML, resolves `Nx` and edits activations through a run.
    @Test func actionFromTheTestsRunsEndToEnd() throws {
        let compiled = try compile("""
              - id: r
                description: shifts
                severity: info
                watch: {pack: dirs, direction: d1}
                detect: {threshold: 100}
                intervene:
                  - {action: shift, by: 0.5x, feature: {pack: sae, label: third}, trigger: always}
                  - {action: shift, by: 1, feature: {pack: dirs, direction: d2}, trigger: always}
            """, registry: registryWithShift())
        let r = try #require(compiled.rules.first)
        #expect(r.interventions.map(\.action.brief) == ["shift 1.5", "shift 1.0"])   // 0.5 × third's max 3
        let run = try compiled.makeRun(steered: true)
        let out = try step(run, [[0.2, 0.5, 1.0, 0]], start: 0, origin: .prompt)
        // Latent 2 (= x_2) goes 1 → 2.5 through its decoder row e_2; d2's projection (x_1) 0.5 → 1.5.
        #expect(out == [[0.2, 1.5, 2.5, 0]])
        #expect(run.results().first?.interventions.map(\.action) == ["shift 1.5", "shift 1.0"])
        #expect(run.results().first?.interventions.map(\.positions) == [[0], [0]])
        // Without the registration the same file is an error naming the registered actions.
        #expect(throws: RulesError.self) {
            try compile("""
                  - id: r
                    description: shifts
                    severity: info
                    watch: {pack: dirs, direction: d1}
                    detect: {threshold: 100}
                    intervene: [{action: shift, by: 1, trigger: always}]
                """)
        }
    }

    /// One rule on d1 with `detect`; feeds a prefill of `prompt` values then one decode step per
    /// `response` value; returns the detection result and the position it first held at.
    private func detect(_ detect: String, prompt: [Float], response: [Float], watch: String = "{pack: dirs, direction: d1}") throws -> RuleResult {
        let compiled = try compile("""
              - id: r
                description: d
                severity: low
                watch: \(watch)
                detect: \(detect)
            """)
        let run = try compiled.makeRun(steered: false)
        try step(run, d1(prompt), start: 0, origin: .prompt)
        for (i, v) in response.enumerated() { try step(run, d1([v]), start: prompt.count + i, origin: .generated) }
        return try #require(run.results().first)
    }

    @Test func maxWaitsForMinTokensAndCountsAtOrAbove() throws {
        // The prompt is out of scope; position 3 equals the threshold but the scope holds 1 token.
        let r = try detect("{threshold: 1.0, scope: response, min_tokens: 2}", prompt: [5, 5, 5], response: [1.0, 0.2])
        #expect(r.fired && r.firedAt == 4)
        #expect(r.observations.map(\.value) == [1.0])
        #expect(r.crossings.map(\.position) == [3])
        #expect(r.summary == "max 1 vs 1")
        let silent = try detect("{threshold: 1.0, scope: response, min_tokens: 2}", prompt: [5, 5, 5], response: [0.9, 0.2])
        #expect(!silent.fired && silent.crossings.isEmpty)
    }

    @Test func countNeedsMinTokensReachingTheThreshold() throws {
        let r = try detect("{threshold: 1.0, scope: all, min_tokens: 2, aggregate: count}", prompt: [2, 0], response: [0, 0, 1.5])
        #expect(r.firedAt == 4 && r.count == 2)
        let r2 = try detect("{threshold: 1.0, scope: all, min_tokens: 3, aggregate: count}", prompt: [2, 0], response: [0, 0, 1.5])
        #expect(!r2.fired && r2.count == 2)
    }

    @Test func meanOverTheScope() throws {
        // Running means over the prompt: 0.5, 1.0 (fires at 1), 1.0.
        let r = try detect("{threshold: 1.0, scope: prompt, aggregate: mean}", prompt: [0.5, 1.5, 1.0], response: [9])
        #expect(r.firedAt == 1)
        let low = try detect("{threshold: 1.0, scope: prompt, aggregate: mean, min_tokens: 3}", prompt: [0.5, 1.5, 0.5], response: [9])
        #expect(!low.fired)
        #expect(low.observations.first?.value.map { abs($0 - 0.8333) < 1e-3 } == true)
    }

    @Test func lastNIsASlidingWindow() throws {
        // count of 2 within any 2 consecutive tokens: positions 0 and 2 are never together.
        let r = try detect("{threshold: 1, scope: {last: 2}, min_tokens: 2, aggregate: count}", prompt: [1, 0, 1, 0], response: [1, 1])
        #expect(r.firedAt == 5 && r.count == 2)
    }

    @Test func allNeedsEveryFeatureAtTheSameToken() throws {
        // x = [v, 0.5, 0, 0]: d1 = v; latent 0 of the SAE = ReLU(v); latent 1 = 0.5.
        let watch = "{all: [{pack: dirs, direction: d1}, {pack: sae, latent: 1}]}"
        let fires = try detect("{threshold: 0.5, scope: all}", prompt: [0.7], response: [], watch: watch)
        #expect(fires.firedAt == 0)
        let silent = try detect("{threshold: 0.6, scope: all}", prompt: [0.7], response: [], watch: watch)
        #expect(!silent.fired)
        let any = try detect("{threshold: 0.6, scope: all}", prompt: [0.7], response: [],
                             watch: "{any: [{pack: dirs, direction: d1}, {pack: sae, latent: 1}]}")
        #expect(any.firedAt == 0)
    }

    @Test func afterFireEditsFromTheFiringPositionOnAndStops() throws {
        let compiled = try compile("""
              - id: r
                description: d
                severity: low
                watch: {pack: dirs, direction: d1}
                detect: {threshold: 1.0, scope: all}
                intervene:
                  - {action: ablate, trigger: after_fire}
                stop: true
            """)
        let baseline = try compiled.makeRun(steered: false)
        #expect(try step(baseline, d1([0.5, 2, 3]), start: 0, origin: .prompt) == d1([0.5, 2, 3]))
        #expect(baseline.results().first?.interventions.isEmpty == true)

        let run = try compiled.makeRun(steered: true)
        #expect(!run.shouldStop)
        let out = try step(run, d1([0.5, 2, 3]), start: 0, origin: .prompt)
        #expect(out == d1([0.5, 0, 0]))
        #expect(run.shouldStop)
        let next = try step(run, d1([0.25]), start: 3, origin: .generated)
        #expect(next == d1([0]))
        let r = try #require(run.results().first)
        #expect(r.firedAt == 1)
        #expect(r.interventions.map(\.positions) == [[1, 2, 3]])
        // Detection reads the activations before the edit at its own point.
        #expect(r.observations.first?.value == 3)

        run.reset()
        #expect(!run.shouldStop && run.results().first?.fired == false)
    }

    @Test func observersReadBeforeTheEdits() throws {
        let compiled = try compile("""
              - id: r
                description: d
                severity: low
                watch: {pack: dirs, direction: d1}
                detect: {threshold: 100}
                intervene:
                  - {action: ablate, trigger: always}
            """)
        let observers = FeaturePlan()
        let monitor = try observers.monitor(Direction(name: "d1", point: block1, vector: [1, 0, 0, 0]))
        let run = try compiled.makeRun(steered: true, observers: observers)
        #expect(try step(run, d1([0.5, 2]), start: 0, origin: .prompt) == d1([0, 0]))
        #expect(monitor.records.map(\.projection) == [0.5, 2])
    }

    @Test func whileEditsWhereTheOtherFeatureIsAtOrAbove() throws {
        let compiled = try compile("""
              - id: r
                description: d
                severity: low
                watch: {pack: dirs, direction: d1}
                detect: {threshold: 100}
                intervene:
                  - action: clamp
                    value: 7
                    feature: {pack: dirs, direction: d2}
                    trigger: {while: {feature: {pack: sae, latent: 0}, threshold: 0.5}}
            """)
        let run = try compiled.makeRun(steered: true)
        let out = try step(run, [[0.5, 1, 0, 0], [0.4, 1, 0, 0], [1, 1, 0, 0]], start: 0, origin: .prompt)
        #expect(out == [[0.5, 7, 0, 0], [0.4, 1, 0, 0], [1, 7, 0, 0]])
        #expect(run.results().first?.interventions.first?.positions == [0, 2])
    }

    @Test func widthMismatchIsReportedAtThePackPath() throws {
        let root = try makePacks(width: 8)
        let path = try rulesFile(in: root, """
              - id: r
                description: d
                severity: low
                watch: {pack: dirs, direction: d1}
                detect: {threshold: 1}
            """)
        #expect {
            try CompiledRules.compile(files: [path], model: model, modelPath: "unused.gguf", modelName: nil)
        } throws: { error in
            guard case RulesError.invalid(let ds) = error else { return false }
            let lines = ds.map(\.description)
            return lines == ["\(path):3:24: error: pack 'dirs': d_in is 8 but the model's width is 4",
                             "\(path):4:23: error: pack 'sae': d_in is 8 but the model's width is 4"]
        }
    }

    @Test func modelMismatchIsAnErrorUnlessAllowed() throws {
        let rule = """
              - id: r
                description: d
                severity: low
                watch: {pack: dirs, direction: d1}
                detect: {threshold: 1}
            """
        #expect {
            try compile(rule, packModel: "Another model")
        } throws: { error in
            guard case RulesError.invalid(let ds) = error, let first = ds.first else { return false }
            return ds.count == 2 && first.location.line == 3 && first.location.column == 24
                && first.message == "pack 'dirs': the pack belongs to another model: the model is 'SmolLM2', "
                    + "the pack expects 'Another model'"
        }
        let allowed = try compile(rule, allowModelMismatch: true, packModel: "Another model")
        #expect(allowed.packs.allSatisfy { $0.modelMismatch == "the model is 'SmolLM2', the pack expects 'Another model'" })
        #expect(allowed.warnings.count == 2)
    }

    @Test func whileConditionAfterTheEditIsAnError() throws {
        #expect {
            try compile("""
                  - id: r
                    description: d
                    severity: low
                    watch: {pack: dirs, direction: d1}
                    detect: {threshold: 1}
                    intervene:
                      - action: ablate
                        feature: {pack: dirs, direction: d2, hook: blocks.0.hook_resid_post}
                        trigger: {while: {feature: {pack: dirs, direction: d1}, threshold: 1}}
                """)
        } throws: { error in
            guard case RulesError.invalid(let ds) = error, ds.count == 1, let d = ds.first else { return false }
            return d.location.line == 12 && d.message.contains("is read at blocks.1.hook_resid_post, after the edit at blocks.0.hook_resid_post")
        }
    }

    /// The SAE binding the first rule watches.
    private func watchedBinding(_ compiled: CompiledRules) -> SAEBinding? {
        guard case .latent(let b, _)? = compiled.rules.first?.features.first?.target else { return nil }
        return b
    }

    @Test func oneEncodePerStepForDetectionObserversAndEdits() throws {
        let compiled = try compile("""
              - id: r
                description: d
                severity: low
                watch: {pack: sae, latent: 2}
                detect: {threshold: 1.0, scope: all}
                intervene:
                  - {action: clamp, value: 0.5, trigger: after_fire}
            """)
        let observers = FeaturePlan()
        let monitor = observers.monitor(try #require(watchedBinding(compiled)), top: 3)
        let run = try compiled.makeRun(steered: true, observers: observers)
        let out = try step(run, [[0, 0, 0.5, 0], [0, 0, 2, 0], [0, 0, 3, 0]], start: 0, origin: .prompt)
        // Detection, the monitor and the clamp read one encoding of the rows as they arrived.
        #expect(run.encodings.encodeCount == 1)
        #expect(out == [[0, 0, 0.5, 0], [0, 0, 0.5, 0], [0, 0, 0.5, 0]])
        #expect(monitor.records.map { $0.latents.first?.activation } == [0.5, 2, 3])
        let r = try #require(run.results().first)
        #expect(r.firedAt == 1 && r.observations.first?.value == 3)
        #expect(r.interventions.map(\.positions) == [[1, 2]])
        _ = try step(run, [[0, 0, 4, 0]], start: 3, origin: .generated)
        #expect(run.encodings.encodeCount == 2)
        #expect(monitor.records.last?.latents.first?.activation == 4)
    }

    @Test func anEditBeforeALaterReaderMakesItEncodeAgain() throws {
        let compiled = try compile("""
              - id: r
                description: d
                severity: low
                watch: {pack: sae, latent: 2}
                detect: {threshold: 100, scope: all}
                intervene:
                  - {action: clamp, value: 0.5, trigger: always}
            """)
        // An observer plan that edits (against its purpose) zeroes latent 2 before the rule's clamp.
        let observers = FeaturePlan()
        try observers.add(Intervention(.latent(try #require(watchedBinding(compiled)), 2), .ablate))
        let run = try compiled.makeRun(steered: true, observers: observers)
        let out = try step(run, [[0, 0, 3, 0]], start: 0, origin: .prompt)
        // The clamp saw the ablated value 0 (not the 3 detection encoded): 0 → 0.5.
        #expect(out == [[0, 0, 0.5, 0]])
        #expect(run.encodings.encodeCount == 2)
        #expect(run.results().first?.observations.first?.value == 3)
    }
}
