// The packs a server offers requests: those named on its command line and those its rules use,
// each distinct directory loaded once and checked against the model. Two packs may share a
// manifest name (the CAA and probe packs of one concept do): requests then name them by directory.

import Foundation
import ProbityFeatures
import ProbityLM

public enum ServedPacks {
    /// Each distinct pack directory of `paths` loaded once and checked against `loaded`, with the
    /// mismatch notes of those `allowModelMismatch` let through.
    public static func load(_ paths: [String], for loaded: LoadedModel, allowModelMismatch: Bool) throws -> (packs: [FeaturePack], notes: [String]) {
        var seen: Set<String> = []
        var packs: [(path: String, pack: FeaturePack)] = []
        var notes: [String] = []
        for path in paths {
            let key = URL(fileURLWithPath: path).standardizedFileURL.resolvingSymlinksInPath().path
            guard seen.insert(key).inserted else { continue }
            let pack = try FeaturePack.load(path: path)
            if let note = try pack.checkCompatibility(model: loaded.model.info, modelPath: loaded.path,
                                                      modelName: loaded.file.value("general.name")?.stringValue,
                                                      allowModelMismatch: allowModelMismatch) {
                notes.append("\(path): \(note)")
            }
            packs.append((path, pack))
        }
        return (packs.map(\.pack), notes)
    }
}
