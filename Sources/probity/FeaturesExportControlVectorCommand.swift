// `probity features export-control-vector`: a directions pack as a llama.cpp control-vector GGUF.

import ArgumentParser
import ProbityFeatures

struct FeaturesExportControlVector: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-control-vector",
        abstract: "Write a directions pack's blocks.N.hook_resid_post directions as a llama.cpp control vector.")

    @Argument(help: "A directions pack.")
    var pack: String

    @Option(help: "The control-vector GGUF to write.")
    var out: String

    @Option(help: "Architecture recorded as controlvector.model_hint.")
    var modelHint: String = "llama"

    func run() throws {
        let p = try FeaturePack.load(path: pack)
        guard p.kind == .directions else {
            throw FeatureError.badAction(argument: pack, reason: "export-control-vector needs a directions pack, found an SAE pack")
        }
        let cv = try ControlVector(directions: p.directions, modelHint: modelHint)
        try cv.write(to: out)
        print("wrote \(out): \(cv.directions.count) direction(s) at layer(s) \(cv.directions.keys.sorted().map(String.init).joined(separator: ", "))")
    }
}
