// Mutated rule files never crash the loader or the parser: every mutant either parses or yields
// diagnostics with a position inside the file.

import Foundation
import Testing
@testable import ProbityRules
import ProbityTensor  // SplitMix64, seeded, so a failing mutant can be reproduced

@Suite struct RobustnessTests {
    @Test func mutatedFilesGiveDiagnosticsNotCrashes() throws {
        let path = RulesFixtures.path("valid/watch.yaml")
        let original = Array(try String(contentsOfFile: path, encoding: .utf8).utf8)
        let lineCount = original.count { $0 == UInt8(ascii: "\n") } + 1
        let alphabet = Array(":-[]{}&*!|>'\"#, \n\t0x.yes".utf8) + [0xC3, 0xFF]
        var rng = SplitMix64(seed: 0x5EED)
        var failedToParse = 0
        for _ in 0..<2000 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                switch Int.random(in: 0..<3, using: &rng) {
                case 0: bytes[i] = alphabet.randomElement(using: &rng) ?? 0x20
                case 1: bytes.remove(at: i)
                default: bytes.insert(alphabet.randomElement(using: &rng) ?? 0x20, at: i)
                }
            }
            var diagnostics = Diagnostics()
            let parser = RuleParser()
            do {
                let root = try YAML.load(bytes, file: path)
                _ = parser.parse(root, file: path, into: &diagnostics)
            } catch {
                diagnostics.record(error)
            }
            if diagnostics.hasErrors { failedToParse += 1 }
            for d in diagnostics.items {
                #expect(d.location.file == path)
                #expect(d.location.line >= 1 && d.location.line <= lineCount + 1, "\(d)")
            }
        }
        // Most random edits break something; a mutation run that never fails tests nothing.
        #expect(failedToParse > 1000)
    }
}
