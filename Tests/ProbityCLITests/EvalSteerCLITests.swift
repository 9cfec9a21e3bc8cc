// `probity eval --steer` as a user runs it: a real run of a shipped steering rule on one dev pair
// (table on stdout, JSON in --out), and bad arguments or data exiting 2 with one message.

import Foundation
import Testing
@testable import ProbityAudit

@Suite struct EvalSteerCLITests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static let rule = repo + "/rules/steering/sycophancy-subtract-l18.yaml"

    static func firstLines(_ path: String, _ n: Int, into dir: URL, as name: String) throws -> String {
        let text = try String(contentsOfFile: repo + "/" + path, encoding: .utf8)
        let out = dir.appendingPathComponent(name).path
        try (text.split(separator: "\n").prefix(n).joined(separator: "\n") + "\n").write(toFile: out, atomically: true, encoding: .utf8)
        return out
    }

    @Test func measuresAShippedSteeringRuleOnOnePair() throws {
        let dir = try CLI.scratch()
        let pairs = try Self.firstLines("evals/dev/sycophancy.dev.jsonl", 2, into: dir, as: "pairs.jsonl")
        let fluency = try Self.firstLines("evals/dev/benign-chitchat.dev.jsonl", 1, into: dir, as: "fluency.jsonl")
        let out = dir.appendingPathComponent("steer.json").path
        let r = try CLI.run(["eval", "default", Self.rule, "--steer", "--data", pairs, "--fluency", fluency,
                             "--strengths", "0,4", "--resamples", "50", "--threads", "2", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("1 pairs (sycophancy); fluency: 1 responses"))
        #expect(r.stdout.contains("baseline") && r.stdout.contains("\n0 ") && r.stdout.contains("\n4 "), "\(r.stdout)")
        let result = try JSONDecoder().decode(SteerEvalResult.self, from: Data(contentsOf: URL(fileURLWithPath: out)))
        #expect(result.strengths.map(\.strength) == [0, 4] && result.pairs == 1 && result.bootstrapResamples == 50)
        #expect(result.rules.map(\.rule) == ["steer.sycophancy-subtract-l18"])
        #expect(result.items[0].steered[0] == result.items[0].baseline)
        #expect(result.items[0].steered[1] != result.items[0].baseline)
    }

    @Test func badArgumentsAndDataExit2() throws {
        let dir = try CLI.scratch()
        let pairs = try Self.firstLines("evals/dev/sycophancy.dev.jsonl", 2, into: dir, as: "pairs.jsonl")
        let benign = try Self.firstLines("evals/dev/benign-chitchat.dev.jsonl", 1, into: dir, as: "benign.jsonl")
        let cases: [([String], String)] = [
            (["--steer", "--data", pairs, "--strengths", "1,abc"], "--strengths: expected comma-separated numbers like 0,0.5,1,2, found 'abc'"),
            (["--steer", "--data", pairs, "--strengths", "0,-1"], "--strengths: expected finite numbers ≥ 0, found -1.0"),
            (["--steer", "--data", pairs, "--strengths", "1,2,1"], "--strengths: 1.0 is given twice"),
            (["--data", pairs, "--strengths", "1"], "--strengths: only with --steer"),
            (["--data", pairs, "--fluency", benign], "--fluency: only with --steer"),
            (["--steer", "--data", benign], "\(benign):1: item 'chat-dev-"),
            (["--steer", "--data", pairs, "--fluency", dir.appendingPathComponent("missing.jsonl").path], "missing.jsonl: cannot read: no such file"),
        ]
        for (arguments, message) in cases {
            let r = try CLI.run(["eval", "default", Self.rule] + arguments)
            #expect(r.status == 2, "\(arguments): \(r.stderr)")
            // One message, first (argument errors are followed by the usage line).
            #expect(r.stderr.split(separator: "\n").first?.contains(message) == true, "\(arguments): \(r.stderr)")
        }
    }
}
