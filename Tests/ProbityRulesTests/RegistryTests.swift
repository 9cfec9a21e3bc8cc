// The plugin registry: a new action is one type and one registration, and names resolve through it.
// `ShiftAction`, defined here only, also runs end to end in CompiledRulesTests.

import ProbityFeatures
import Testing
@testable import ProbityRules

/// An action defined outside the library's built-ins, as a plugin author would: this one type and
/// a `register` line are all it takes for rules, packs and a run to use it.
struct ShiftAction: Action {
    static let name = "shift"
    static let summary = "add a level to the feature's activation"
    var by: Level

    init(by: Level) { self.by = by }

    init?(arguments: inout some ActionArguments) {
        guard let by = arguments.level("by") else { return nil }
        self.by = by
    }

    var values: [Level] { [by] }
    func resolved(_ level: (Level) -> Float) -> ShiftAction { ShiftAction(by: .absolute(Double(level(by)))) }
    var description: String { "shift by \(by.explained)" }
    func edited(_ f: Float) -> Float? { by.value(maxActivation: nil).map { f + $0 } }
}

/// The standard registry with `shift` added.
func registryWithShift() -> PluginRegistry {
    var registry = PluginRegistry.standard
    registry.register(action: ShiftAction.self)
    return registry
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
              - {action: shift, by: 2x, trigger: always}
        """

    @Test func registeredActionResolvesAndReadsItsKeys() throws {
        var diagnostics = Diagnostics()
        let file = RuleParser(registry: registryWithShift()).parse(try YAML.load(text, file: "r.yaml"), file: "r.yaml", into: &diagnostics)
        #expect(diagnostics.items.isEmpty, "\(diagnostics.rendered())")
        let action = try #require(file?.rules.first?.interventions.first?.action as? ShiftAction)
        #expect(action.by == .relative(2))
    }

    @Test func registeredActionReportsItsOwnKeyProblems() throws {
        var diagnostics = Diagnostics()
        let bad = text.replacingOccurrences(of: "by: 2x", with: "by: lots")
        _ = RuleParser(registry: registryWithShift()).parse(try YAML.load(bad, file: "r.yaml"), file: "r.yaml", into: &diagnostics)
        #expect(diagnostics.items == [Diagnostic(
            .error, "rule 'a': shift: 'by': expected a number or a multiple of the feature's max activation like '0.3x', found string 'lots'",
            at: FileLocation(file: "r.yaml", line: 10, column: 29))])
    }

    @Test func unregisteredActionListsTheRegisteredOnes() throws {
        var diagnostics = Diagnostics()
        _ = RuleParser().parse(try YAML.load(text, file: "r.yaml"), file: "r.yaml", into: &diagnostics)
        #expect(diagnostics.items == [Diagnostic(
            .error, "rule 'a': unknown action 'shift' (registered: ablate, add, cap, clamp, project_out, scale)",
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
