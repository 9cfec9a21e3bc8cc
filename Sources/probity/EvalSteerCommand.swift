// `probity eval RULES… --steer --data PAIRS.jsonl [--strengths …] [--fluency FILE…]`: intervention
// rules measured on behaviour (docs/eval.md, "Steering, measured"): the rate at which matched pairs
// prefer their label-1 response, unedited and at each strength, with a paired bootstrap interval of
// the change, and the perplexity of benign responses as the fluency cost.

import ArgumentParser
import Foundation
import ProbityAudit

/// The options of `eval --steer`.
struct EvalSteerOptions: ParsableArguments {
    @Flag(help: "Measure the rules' interventions on behaviour: matched pairs in --data, the rate preferring the label-1 response, unedited vs at each strength (docs/eval.md).")
    var steer = false

    @Option(help: "With --steer: comma-separated strengths, each multiplying every edit (default 0,0.5,1,2,4,8).")
    var strengths: String?

    @Option(help: "With --steer: items whose responses' perplexity is the fluency cost, JSONL (repeatable).")
    var fluency: [String] = []

    /// The strengths asked for, or the default sweep.
    func strengthValues() throws -> [Double] {
        guard let strengths else { return SteeringEvaluation.defaultStrengths }
        return try strengths.split(separator: ",", omittingEmptySubsequences: false).map { part in
            let text = part.trimmingCharacters(in: .whitespaces)
            guard let value = Double(text) else {
                throw ValidationError("--strengths: expected comma-separated numbers like 0,0.5,1,2, found '\(text)' in '\(strengths)'")
            }
            return value
        }
    }

    func validate() throws {
        if !steer {
            if strengths != nil { throw ValidationError("--strengths: only with --steer") }
            if !fluency.isEmpty { throw ValidationError("--fluency: only with --steer") }
            return
        }
        try SteeringEvaluation.check(strengths: try strengthValues())
    }
}

extension EvalCommand {
    /// Measures the interventions of `ruleFiles` and prints the curve (or its JSON).
    func runSteer(model: String, ruleFiles: [String]) throws {
        let result = try SteeringEvaluation.run(
            model: model, adapters: try adapterOptions.requests(), ruleFiles: ruleFiles, dataFiles: data, fluencyFiles: steering.fluency,
            strengths: try steering.strengthValues(), chatFormat: chatFormat, version: Version.current,
            threads: threads, resamples: resamples, progress: Self.progress(label: "eval --steer"))
        _ = try emit(json: result.json(), table: result.table())
    }
}
