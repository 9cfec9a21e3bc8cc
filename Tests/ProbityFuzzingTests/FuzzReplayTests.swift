// Every fuzz seed (Fuzz/corpus/<target>) and every input a fuzzing campaign found to crash
// (Tests/Fixtures/fuzz-regressions/<target>, kept after the fix) through the same reader the
// libFuzzer entry point calls: each must be read or refused, never trap or break a property.

import Foundation
import ProbityFuzzing
import Testing

@Suite struct FuzzReplayTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()
    static let context = Result {
        try FuzzContext(scratch: NSTemporaryDirectory() + "probity-fuzz-replay-\(ProcessInfo.processInfo.processIdentifier)",
                        packs: root.appendingPathComponent("Tests/Fixtures/rules/packs").path,
                        vocabularies: FuzzDriver.vocabularies)
    }

    /// The files of one target's directory under `dir`, sorted; none when it does not exist.
    static func inputs(_ dir: String, _ target: FuzzTarget) -> [URL] {
        let url = root.appendingPathComponent(dir).appendingPathComponent(target.rawValue)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: url.path)) ?? []
        return names.filter { !$0.hasPrefix(".") }.sorted().map { url.appendingPathComponent($0) }
    }

    @Test(arguments: FuzzTarget.allCases)
    func seedsAndRegressions(_ target: FuzzTarget) throws {
        let seeds = Self.inputs("Fuzz/corpus", target)
        #expect(!seeds.isEmpty, "no seeds in Fuzz/corpus/\(target.rawValue)")
        var accepted = 0
        var refusals: [String] = []
        for file in seeds + Self.inputs("Tests/Fixtures/fuzz-regressions", target) {
            let outcome = try target.run([UInt8](try Data(contentsOf: file)), in: try Self.context.get())
            #expect(!outcome.isViolation, "\(file.lastPathComponent): \(outcome)")
            if outcome == .accepted { accepted += 1 }
            if case .refused(let why) = outcome { refusals.append("\(file.lastPathComponent): \(why)") }
        }
        // Seeds are valid or near-valid files; at least one of each target must be read in full, or
        // the fuzzer would only ever explore the first refusal.
        #expect(accepted > 0, "no seed of \(target.rawValue) is accepted: \(refusals.joined(separator: "; "))")
    }
}
