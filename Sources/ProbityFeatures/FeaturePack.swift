// Feature packs: a directory with a manifest (pack.json) naming the model it belongs to, its hook
// point and a labels file, holding an SAE in SAELens layout, named directions, or a linear probe. A
// bare SAELens directory (cfg.json + sae_weights.safetensors, no manifest) is accepted wherever a pack is.

import Foundation
import ProbityFormats
import ProbityLM

/// What a pack holds.
public enum PackKind: String, Sendable {
    case sae
    case directions
    /// A logistic-regression probe: a weight vector and a bias (Probe.swift).
    case probe
}

/// The pack's manifest (pack.json).
public struct PackManifest: Sendable, Equatable {
    public static let fileName = "pack.json"
    public static let schemaVersion = 1

    public var name: String
    public var kind: PackKind
    /// The model's `general.name`, if the pack names one.
    public var modelName: String?
    /// SHA-256 of the model's GGUF file, if the pack records it.
    public var modelSHA256: String?
    public var hook: String
    /// Labels file, relative to the pack directory.
    public var labels: String?
    /// Directions file for a directions pack, relative to the pack: a safetensors file of named
    /// vectors, or a llama.cpp control-vector `.gguf`.
    public var directions: String?
    /// Probe file for a probe pack, relative to the pack: a safetensors file with `weight` and `bias`.
    public var probe: String?
    /// Where the pack came from (inputs and their digests, counts); JSON text, kept as written.
    public var provenanceJSON: String?
    /// The items that derived the pack (`provenance.items`), read strictly; written into the
    /// provenance by `jsonData()`.
    public var derivationItems: DerivationItems?

    /// A manifest; `labels` and `directions` are file names inside the pack.
    public init(name: String, kind: PackKind, modelName: String?, modelSHA256: String?, hook: String,
                labels: String? = "labels.json", directions: String? = nil, probe: String? = nil,
                provenanceJSON: String? = nil, derivationItems: DerivationItems? = nil) {
        self.name = name
        self.kind = kind
        self.modelName = modelName
        self.modelSHA256 = modelSHA256
        self.hook = hook
        self.labels = labels
        self.directions = directions
        self.probe = probe
        self.provenanceJSON = provenanceJSON
        self.derivationItems = derivationItems
    }

    /// The keys a probe pack's manifest may hold (other kinds are read leniently, as SAELens
    /// manifests grow keys; a probe pack is ours alone).
    static let probeKeys: Set<String> = ["schema_version", "name", "kind", "model", "hook", "labels", "probe", "provenance"]

    static func load(path: String) throws -> PackManifest {
        guard let data = try WholeFile.contents(path, what: "pack.json", limit: FileSizeLimits.smallJSON) else {
            throw FeatureError.missingFile(path: path, what: "pack.json")
        }
        let object = try StrictJSON.object(from: data, path: path, maxValues: StrictJSON.maxSmallDocumentValues)
        guard let top = object as? [String: Any] else { throw FeatureError.badJSON(path: path, reason: "expected an object") }
        let keys = JSONKeys(top, path: path)
        func required(_ key: String) throws -> String {
            guard let s = try keys.string(key) else { throw FeatureError.missingConfigKey(path: path, key: key) }
            return s
        }
        if let v = keys.rawInt("schema_version"), v > schemaVersion {
            throw FeatureError.badManifest(path: path, key: "schema_version", expected: "at most \(schemaVersion)", found: "\(v)")
        }
        let kindName = try required("kind")
        guard let kind = PackKind(rawValue: kindName) else {
            throw FeatureError.badManifest(path: path, key: "kind", expected: "sae, directions or probe", found: kindName)
        }
        if kind == .probe {
            if let extra = top.keys.sorted().first(where: { !Self.probeKeys.contains($0) }) {
                throw FeatureError.badProbe(path: path, reason: "unknown key '\(extra)' (a probe pack's manifest holds \(Self.probeKeys.sorted().joined(separator: ", ")))")
            }
        }
        var modelName: String?, sha: String?
        if let model = top["model"] {
            guard let m = model as? [String: Any] else {
                throw FeatureError.badManifest(path: path, key: "model", expected: "an object with name and gguf_sha256", found: "\(model)")
            }
            let mk = JSONKeys(m, path: path)
            modelName = try mk.string("name")
            sha = try mk.string("gguf_sha256")?.lowercased()
            if let s = sha, s.count != 64 || !s.allSatisfy(\.isHexDigit) {
                throw FeatureError.badManifest(path: path, key: "model.gguf_sha256", expected: "64 hex digits", found: s)
            }
        }
        var provenance: String?
        var derivation: DerivationItems?
        if let p = top["provenance"] {
            let d = try JSONSerialization.data(withJSONObject: p, options: [.sortedKeys])
            provenance = String(decoding: d, as: UTF8.self)
            if let items = (p as? [String: Any])?[DerivationItems.key] { derivation = try DerivationItems.parse(items, path: path) }
        }
        return PackManifest(name: try required("name"), kind: kind, modelName: modelName, modelSHA256: sha,
                            hook: try required("hook"), labels: try keys.string("labels"),
                            directions: try keys.string("directions"), probe: try keys.string("probe"),
                            provenanceJSON: provenance, derivationItems: derivation)
    }

    /// The manifest as JSON with sorted keys.
    public func jsonData() throws -> Data {
        var o: [String: Any] = ["schema_version": Self.schemaVersion, "name": name, "kind": kind.rawValue, "hook": hook]
        var model: [String: Any] = [:]
        if let modelName { model["name"] = modelName }
        if let modelSHA256 { model["gguf_sha256"] = modelSHA256 }
        if !model.isEmpty { o["model"] = model }
        if let labels { o["labels"] = labels }
        if let directions { o["directions"] = directions }
        if let probe { o["probe"] = probe }
        if let p = provenanceJSON, let obj = try? JSONSerialization.jsonObject(with: Data(p.utf8)) { o["provenance"] = obj }
        if let derivationItems {
            var provenance = o["provenance"] as? [String: Any] ?? [:]
            provenance[DerivationItems.key] = derivationItems.jsonObject
            o["provenance"] = provenance
        }
        return try JSONSerialization.data(withJSONObject: o, options: [.sortedKeys, .prettyPrinted])
    }
}

/// A loaded feature pack.
public final class FeaturePack: Sendable {
    public let path: String
    /// nil for a bare SAELens directory.
    public let manifest: PackManifest?
    public let name: String
    public let kind: PackKind
    public let hook: HookPoint
    public let labels: FeatureLabels
    public let sae: SparseAutoencoder?
    public let directions: [Direction]
    /// The probe of a probe pack.
    public let probe: Probe?

    /// Key in a directions safetensors file's metadata giving a direction's hook point.
    public static func hookMetadataKey(_ name: String) -> String { "hook.\(name)" }

    /// Loads the pack at `path`: a directory with pack.json, or a bare SAELens directory.
    public static func load(path: String) throws -> FeaturePack {
        let manifestPath = path + "/" + PackManifest.fileName
        if FileManager.default.fileExists(atPath: manifestPath) {
            return try FeaturePack(path: path, manifest: try PackManifest.load(path: manifestPath))
        }
        guard SparseAutoencoder.isSAELensDirectory(path) else { throw FeatureError.notAPack(path: path) }
        let sae = try SparseAutoencoder.load(directory: path)
        guard let hookName = sae.config.hookName else {
            throw FeatureError.unknownHook(pack: path, hook: "", reason: "cfg.json names no hook (metadata.hook_name), and there is no pack.json to say it")
        }
        let name = URL(fileURLWithPath: path).standardizedFileURL.lastPathComponent
        return try FeaturePack(path: path, name: name, manifest: nil, kind: .sae, hookName: hookName,
                               labels: FeatureLabels(), sae: sae, directions: [], probe: nil)
    }

    private convenience init(path: String, manifest: PackManifest) throws {
        var labels = FeatureLabels()
        if let file = manifest.labels {
            let lp = path + "/" + file
            if FileManager.default.fileExists(atPath: lp) { labels = try FeatureLabels.load(path: lp) } else {
                throw FeatureError.missingFile(path: path, what: "labels file '\(file)' (named in pack.json)")
            }
        }
        switch manifest.kind {
        case .sae:
            let sae = try SparseAutoencoder.load(directory: path)
            try self.init(path: path, name: manifest.name, manifest: manifest, kind: .sae, hookName: manifest.hook,
                          labels: labels, sae: sae, directions: [], probe: nil)
        case .directions:
            let file = manifest.directions ?? "directions.safetensors"
            let dp = path + "/" + file
            guard FileManager.default.fileExists(atPath: dp) else {
                throw FeatureError.missingFile(path: path, what: "directions file '\(file)'")
            }
            let dirs: [Direction]
            if file.hasSuffix(".gguf") {
                dirs = try ControlVector.load(path: dp).namedDirections()
            } else {
                dirs = try Self.loadDirections(path: dp, defaultHook: manifest.hook)
            }
            try self.init(path: path, name: manifest.name, manifest: manifest, kind: .directions, hookName: manifest.hook,
                          labels: labels, sae: nil, directions: dirs, probe: nil)
        case .probe:
            let file = manifest.probe ?? "probe.safetensors"
            let pp = path + "/" + file
            guard FileManager.default.fileExists(atPath: pp) else {
                throw FeatureError.missingFile(path: path, what: "probe file '\(file)'")
            }
            guard let point = HookPoint(name: manifest.hook) else {
                throw FeatureError.unknownHook(pack: path, hook: manifest.hook, reason: "not a hook name (expected e.g. blocks.15.hook_resid_post)")
            }
            let probe = try Probe.load(path: pp, name: manifest.name, point: point)
            try self.init(path: path, name: manifest.name, manifest: manifest, kind: .probe, hookName: manifest.hook,
                          labels: labels, sae: nil, directions: [], probe: probe)
        }
    }

    private init(path: String, name: String, manifest: PackManifest?, kind: PackKind, hookName: String,
                 labels: FeatureLabels, sae: SparseAutoencoder?, directions: [Direction], probe: Probe?) throws {
        guard let point = HookPoint(name: hookName) else {
            throw FeatureError.unknownHook(pack: path, hook: hookName, reason: "not a hook name (expected e.g. blocks.15.hook_resid_post)")
        }
        self.path = path
        self.name = name
        self.manifest = manifest
        self.kind = kind
        self.hook = point
        self.labels = labels
        self.sae = sae
        self.directions = directions
        self.probe = probe
    }

    /// Named directions from a safetensors file: one 1-D tensor per name, its hook point in the
    /// metadata under `hook.<name>` (else the pack's hook).
    public static func loadDirections(path: String, defaultHook: String) throws -> [Direction] {
        let file = try SafeTensorsFile(path: path)
        var out: [Direction] = []
        var width: Int?
        for t in file.tensors.sorted(by: { $0.name < $1.name }) {
            guard t.shape.count == 1 else {
                throw FeatureError.tensorShape(path: path, name: t.name, expected: [width ?? -1], found: t.shape)
            }
            if let w = width, w != t.shape[0] {
                throw FeatureError.tensorShape(path: path, name: t.name, expected: [w], found: t.shape)
            }
            width = t.shape[0]
            switch t.dtype {
            case .f32, .f16, .bf16: break
            default: throw FeatureError.tensorType(path: path, name: t.name, expected: "F32, F16 or BF16", found: t.dtype.rawValue)
            }
            let v = try file.floats(for: t)
            if let bad = v.firstIndex(where: { !$0.isFinite }) { throw FeatureError.nonFinite(path: path, name: t.name, index: bad) }
            let hookName = file.metadata[hookMetadataKey(t.name)] ?? defaultHook
            guard let point = HookPoint(name: hookName) else {
                throw FeatureError.unknownHook(pack: path, hook: hookName, reason: "direction '\(t.name)': not a hook name")
            }
            out.append(Direction(name: t.name, point: point, vector: v))
        }
        return out
    }

    /// Writes named directions as a safetensors file (F32), hooks in the metadata.
    public static func writeDirections(_ directions: [Direction], to path: String, metadata: [String: String] = [:]) throws {
        var w = SafeTensorsWriter(name: path)
        w.metadata = metadata
        for d in directions {
            w.metadata[hookMetadataKey(d.name)] = d.point.name
            try w.addTensor(name: d.name, shape: [d.vector.count], floats: d.vector)
        }
        try w.write(to: path)
    }

    /// Width of the pack's vectors (d_in).
    public var width: Int { sae?.dIn ?? directions.first?.vector.count ?? probe?.weights.count ?? 0 }

    /// The SAE bound at the pack's hook under the pack's name (nil for a directions pack).
    public var binding: SAEBinding? {
        sae.map { SAEBinding(name: name, sae: $0, point: hook, labels: labels) }
    }

    /// Checks the pack against a model before any token runs: d_in equals the model's width, the
    /// hook exists in the model, and the model is the one the manifest names (by GGUF SHA-256 when
    /// recorded, else by `general.name`). A model mismatch throws unless `allowModelMismatch`;
    /// then the returned text says what differed, for the result to record. `modelSHA256`, when
    /// given, is the model file's digest already computed (checking several packs hashes it once).
    public func checkCompatibility(model: ModelInfo, modelPath: String, modelName: String?, modelSHA256: String? = nil,
                                   allowModelMismatch: Bool = false) throws -> String? {
        guard width == model.width else { throw FeatureError.widthMismatch(pack: name, dIn: width, modelWidth: model.width) }
        for point in [hook] + directions.map(\.point) {
            do { try model.validate(point) } catch {
                throw FeatureError.unknownHook(pack: name, hook: point.name, reason: "the model has no such hook point (\(model.blockCount) blocks)")
            }
        }
        guard let manifest else { return nil }
        var mismatch: String?
        if let expected = manifest.modelSHA256 {
            let found = try modelSHA256 ?? SHA256.hex(file: modelPath)
            if found != expected { mismatch = "the model's GGUF sha256 is \(found), the pack expects \(expected)" }
        } else if let expected = manifest.modelName, let modelName, expected != modelName {
            mismatch = "the model is '\(modelName)', the pack expects '\(expected)'"
        }
        if let mismatch, !allowModelMismatch {
            throw FeatureError.modelMismatch(pack: name, detail: mismatch)
        }
        return mismatch
    }

    /// A feature by reference: a latent index (`123`), a label name, a direction name, or a probe's name.
    public func feature(_ reference: String) throws -> FeatureTarget {
        if let probe {
            if reference == probe.name || labels.id(named: reference) == probe.name { return .probe(probe) }
            throw FeatureError.unknownFeature(pack: name, name: reference)
        }
        if let binding {
            if let i = Int(reference) {
                guard i >= 0 && i < binding.sae.dSAE else {
                    throw FeatureError.latentOutOfRange(pack: name, index: i, dSAE: binding.sae.dSAE)
                }
                return .latent(binding, i)
            }
            if let id = labels.id(named: reference), let i = Int(id), i >= 0 && i < binding.sae.dSAE {
                return .latent(binding, i)
            }
            throw FeatureError.unknownFeature(pack: name, name: reference)
        }
        if let d = directions.first(where: { $0.name == reference }) { return .direction(d) }
        if let id = labels.id(named: reference), let d = directions.first(where: { $0.name == id }) { return .direction(d) }
        throw FeatureError.unknownFeature(pack: name, name: reference)
    }
}
