// Writing a pack's labels: the labels file the manifest names (labels.json when it names none,
// which is then recorded in pack.json), each file replaced atomically.

import Foundation

extension FeaturePack {
    /// Where the pack's labels file is or will be.
    public var labelsPath: String { path + "/" + (manifest?.labels ?? "labels.json") }

    /// Writes `labels` as the pack's labels file and makes the manifest name it: a manifest without
    /// a `labels` field gains `"labels": "labels.json"`; a bare SAELens directory gains a pack.json
    /// (name, kind, hook, and the model the labels were computed on). Returns the labels file's
    /// path and whether pack.json was written.
    @discardableResult
    public func writeLabels(_ labels: FeatureLabels, modelName: String?, modelSHA256: String?) throws -> (labels: String, manifestWritten: Bool) {
        let target = labelsPath
        try labels.write(to: target)
        var updated: PackManifest?
        if var m = manifest {
            if m.labels == nil {
                m.labels = "labels.json"
                updated = m
            }
        } else {
            updated = PackManifest(name: name, kind: kind, modelName: modelName, modelSHA256: modelSHA256, hook: hook.name,
                                   labels: "labels.json")
        }
        if let updated {
            try updated.jsonData().write(to: URL(fileURLWithPath: path + "/" + PackManifest.fileName), options: .atomic)
        }
        return (target, updated != nil)
    }
}
