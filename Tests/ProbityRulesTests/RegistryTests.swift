// The plugin registry: a new action is one type and one registration, and names resolve through it.

import Testing
@testable import ProbityRules

/// An action defined outside the library's built-ins, as a plugin author would.
private struct FlipAction: Action {
    static let name = "flip"
    static let summary = "negate the feature"
    var strength: Double

    init?(fields: inout Fields, diagnostics: inout Diagnostics) {
        guard let s = fields.read("strength", required: true, into: &diagnostics, { n throws(RulesError) in try n.number() }) else {
            return nil
        }
        strength = s
    }

    var description: String { "flip with strength \(strength)" }
}

@Suite struct RegistryTests {
    @Test func standardRegistryHasTheBuiltIns() {
        #expect(PluginRegistry.standard.actionNames == ["ablate", "add", "cap", "clamp", "project_out", "scale"])
        #expect(PluginRegistry.standard.detectorKinds == ["threshold"])
    }

    private let text = """
        schema_version: 1
        packs: [{name: p, path: p}]
        rules:
          - id: a
            description: d
            severity: info
            watch: {latent: 1}
            detect: {threshold: 1}
            intervene:
              - {action: flip, strength: 2, trigger: always}
        """

    @Test func registeredActionResolvesAndReadsItsKeys() throws {
        var registry = PluginRegistry.standard
        registry.register(action: FlipAction.self)
        var diagnostics = Diagnostics()
        let file = RuleParser(registry: registry).parse(try YAML.load(text, file: "r.yaml"), file: "r.yaml", into: &diagnostics)
        #expect(diagnostics.items.isEmpty, "\(diagnostics.rendered())")
        let action = try #require(file?.rules.first?.interventions.first?.action as? FlipAction)
        #expect(action.strength == 2)
    }

    @Test func unregisteredActionListsTheRegisteredOnes() throws {
        var diagnostics = Diagnostics()
        _ = RuleParser().parse(try YAML.load(text, file: "r.yaml"), file: "r.yaml", into: &diagnostics)
        #expect(diagnostics.items == [Diagnostic(
            .error, "rule 'a': unknown action 'flip' (registered: ablate, add, cap, clamp, project_out, scale)",
            at: FileLocation(file: "r.yaml", line: 10, column: 18))])
    }

    @Test func unknownDetectorKind() throws {
        let text = self.text.replacingOccurrences(of: "{threshold: 1}", with: "{kind: treshold, threshold: 1}")
        var diagnostics = Diagnostics()
        _ = RuleParser().parse(try YAML.load(text, file: "r.yaml"), file: "r.yaml", into: &diagnostics)
        #expect(diagnostics.items.first == Diagnostic(.error, "rule 'a': unknown detector kind 'treshold' (registered: threshold)",
                                                      at: FileLocation(file: "r.yaml", line: 8, column: 20),
                                                      hint: "did you mean 'threshold'?"))
    }
}
