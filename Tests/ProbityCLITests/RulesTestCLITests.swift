// `probity rules test` through the real binary on the default model, with a one-direction pack
// (e0 at blocks.5.hook_resid_post) written for the test: passing, failing and invalid rule files.

import Foundation
import ProbityFormats
import Testing

@Suite struct RulesTestCLITests {
    /// A scratch directory holding pack `toy` of the given width and `rules.yaml` with `rules`.
    private func setUp(width: Int = 576, _ rules: String) throws -> String {
        let root = try CLI.scratch()
        let pack = root.appendingPathComponent("toy")
        try FileManager.default.createDirectory(at: pack, withIntermediateDirectories: true)
        var w = SafeTensorsWriter()
        w.metadata["hook.toy"] = "blocks.5.hook_resid_post"
        try w.addTensor(name: "toy", shape: [width], floats: (0..<width).map { $0 == 0 ? 1 : 0 })
        try w.write(to: pack.appendingPathComponent("directions.safetensors").path)
        try #"{"schema_version": 1, "name": "toy", "kind": "directions", "hook": "blocks.5.hook_resid_post", "directions": "directions.safetensors"}"#
            .write(to: pack.appendingPathComponent("pack.json"), atomically: true, encoding: .utf8)
        let path = root.appendingPathComponent("rules.yaml").path
        try ("schema_version: 1\npacks:\n  - {name: toy, path: toy}\nrules:\n" + rules)
            .write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // Thresholds far outside any activation make "fires" and "silent" certain, so a wrong
    // expectation must fail; `stop` and `add` show the rule is attached to the generation.
    static let rules = """
          - id: halts
            description: fires on the first response token and stops
            severity: low
            watch: {direction: toy}
            detect: {threshold: -1000}
            stop: true
            tests:
              - {prompt: "The capital of France is", expect: fires, max_tokens: 8, output: {contains: Paris, excludes: "."}}
          - id: steers
            description: never fires; pushes along the direction at every position
            severity: low
            watch: {direction: toy}
            detect: {threshold: 1000, scope: all}
            intervene:
              - {action: add, alpha: 300, trigger: always}
            tests:
              - {prompt: "The capital of France is", expect: silent, max_tokens: 4, output: {excludes: Paris}}

        """

    @Test func passingTestsExitZero() throws {
        let path = try setUp(Self.rules)
        let r = try CLI.run(["rules", "test", path])
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        let lines = r.stdout.split(separator: "\n").map(String.init)
        #expect(lines.count == 3)
        #expect(lines.first?.hasPrefix("PASS halts #1 (\(path):12:9): fires: fired at position 5; max ") == true)
        #expect(lines.dropFirst().first?.hasPrefix("PASS steers #1 (\(path):21:9): silent: silent; max ") == true)
        #expect(lines.last == "2 tests: 2 passed, 0 failed")
    }

    @Test func aTestWhoseExpectationDoesNotHoldExitsOne() throws {
        let path = try setUp(Self.rules + """
              - id: never
                description: cannot reach its threshold
                severity: low
                watch: {direction: toy}
                detect: {threshold: 1000}
                tests:
                  - {name: wrong, prompt: "The capital of France is", expect: fires, max_tokens: 3}

            """)
        let r = try CLI.run(["rules", "test", path])
        #expect(r.status == 1, "\(r.stdout)\(r.stderr)")
        #expect(r.stdout.contains("FAIL never 'wrong' (\(path):28:9): expected it to fire, it stayed silent: silent; max "))
        #expect(r.stdout.hasSuffix("3 tests: 2 passed, 1 failed\n"))
    }

    @Test func jsonHasAnObjectPerTestAndTheSameExitCode() throws {
        let path = try setUp(Self.rules + """
              - id: never
                description: cannot reach its threshold
                severity: low
                watch: {direction: toy}
                detect: {threshold: 1000}
                tests:
                  - {name: wrong, prompt: "The capital of France is", expect: fires, max_tokens: 3}

            """)
        let r = try CLI.run(["rules", "test", path, "--json"])
        #expect(r.status == 1, "\(r.stderr)")
        let document = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(document["passed"] as? Int == 2)
        #expect(document["failed"] as? Int == 1)
        let tests = try #require(document["tests"] as? [[String: Any]])
        #expect(tests.map { $0["rule"] as? String } == ["halts", "steers", "never"])
        let halts = tests[0], wrong = tests[2]
        #expect(halts["test"] as? String == "#1")
        #expect(halts["file"] as? String == path && halts["line"] as? Int == 12 && halts["column"] as? Int == 9)
        #expect(halts["expect"] as? String == "fires" && halts["fired"] as? Bool == true && halts["fired_at"] as? Int == 5)
        #expect(halts["pass"] as? Bool == true && (halts["problems"] as? [String]) == [])
        #expect(halts["aggregate"] as? String == "max")
        let observed = try #require((halts["observed"] as? [[String: Any]])?.first)
        #expect(observed["feature"] as? String == "toy" && observed["threshold"] as? Double == -1000)
        #expect((observed["value"] as? Double).map { $0 > -1000 } == true)
        #expect(wrong["test"] as? String == "wrong" && wrong["pass"] as? Bool == false && wrong["fired"] as? Bool == false)
        #expect(wrong["fired_at"] == nil)
        #expect((wrong["problems"] as? [String]) == ["expected it to fire, it stayed silent"])
    }

    @Test func aPackOfAnotherWidthIsBadInputAtItsLine() throws {
        let path = try setUp(width: 8, Self.rules)
        let r = try CLI.run(["rules", "test", path])
        #expect(r.status == 2)
        #expect(r.stderr == "\(path):3:23: error: pack 'toy': d_in is 8 but the model's width is 576\n1 error, 0 warnings\n")
        #expect(r.stdout == "")
    }
}
