// Batched audits compute what sequential ones do: the same report (timings aside) at every batch
// size, whether a case's runs share one pass of its prompt (interventions only on the response) or
// each run their own (an intervention that may edit the prompt), and an interruption keeps the
// cases before the first one it cut short, as a sequential run does. A suite's calibration answers
// batch too, with the same thresholds.

import Foundation
import ProbityAudit
import Testing

@Suite(.serialized) struct BatchedAuditTests {
    static func run(_ path: String, batchSize: Int, interrupted: @escaping () -> Bool = { false }) throws -> AuditReport {
        try Audit.run(suitePath: path, version: "test", failOn: .high, shard: (1, 1), threads: 2, batchSize: batchSize,
                      interrupted: interrupted, progress: { _ in })
    }

    /// The suite at `path` run one case at a time, after checking that each of `widths` writes the
    /// same report apart from timings.
    static func sameAtEveryWidth(_ path: String, widths: [Int]) throws -> AuditReport {
        let sequential = try run(path, batchSize: 1)
        let want = try AuditRunTests.stable(sequential)
        for width in widths {
            #expect(try AuditRunTests.stable(try run(path, batchSize: width)) == want, "batch size \(width)")
        }
        return sequential
    }

    static let fiveCases = AuditFixtures.threeCases + """
      - id: four
        messages: [{role: system, content: "Answer in one word."}, {role: user, content: "What colour is the sky?"}]
      - id: five
        text: "def add(a, b):"

    """

    /// A rule that steers from the first prompt token on (`positions` defaults to all).
    static let promptEditing = """
    schema_version: 1
    packs:
      - {name: caa-sycophancy, path: \(AuditFixtures.repo)/packs/caa-sycophancy}
    rules:
      - id: everywhere
        description: Steers every position once it fires.
        severity: low
        watch: {direction: sycophancy}
        detect: {threshold: -100000, scope: all, aggregate: max}
        intervene:
          - {action: add, alpha: -4, trigger: after_fire}

    """

    @Test(arguments: [false, true])
    func everyBatchSizeWritesTheSameReport(promptEditing: Bool) throws {
        let dir = try AuditFixtures.scratch()
        var rules = "rules.yaml"
        if promptEditing {
            try Self.promptEditing.write(toFile: dir + "/editing.yaml", atomically: true, encoding: .utf8)
            rules = "rules.yaml, editing.yaml"
        }
        let path = try AuditFixtures.suite(in: dir, cases: Self.fiveCases, maxTokens: 6, rules: rules)
        // 2: cases join as others finish; 8: all at once.
        let sequential = try Self.sameAtEveryWidth(path, widths: [2, 8])
        #expect(sequential.cases.count == 5 && sequential.complete)
        #expect(sequential.cases.contains { ($0.effects?.interventions.first?.positionsEdited ?? 0) > 0 })
    }

    @Test func calibrationAnswersAreTheSameBatched() throws {
        let dir = try AuditFixtures.scratch()
        let path = try AuditFixtures.suite(in: dir, cases: AuditFixtures.threeCases, maxTokens: 6)
        try AuditFixtures.addCalibration(to: path, more: [#"{id: c4, text: "Water boils at"}"#])
        let sequential = try Self.sameAtEveryWidth(path, widths: [3, 8])
        let calibration = try #require(sequential.rules.first { $0.id == "always.fires" }?.calibration)
        #expect(calibration.answers.map(\.id) == ["c1", "c2", "c3", "c4"])
    }

    @Test func anInterruptionKeepsTheCasesBeforeIt() throws {
        let dir = try AuditFixtures.scratch()
        let path = try AuditFixtures.suite(in: dir, cases: Self.fiveCases, maxTokens: 6)
        let whole = try Self.run(path, batchSize: 1)
        // Two cases in flight; the interruption comes while the second pair decodes.
        var polls = 0
        let cut = try Self.run(path, batchSize: 2, interrupted: { polls += 1; return polls > 14 })
        #expect(!cut.complete)
        #expect(cut.cases.count < 5)
        #expect(cut.cases.map(\.id) == Array(whole.cases.map(\.id).prefix(cut.cases.count)))
        for (a, b) in zip(cut.cases, whole.cases) {
            #expect(a.baseline.text == b.baseline.text && a.steered?.text == b.steered?.text, "\(a.id)")
        }
    }
}
