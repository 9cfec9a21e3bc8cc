// What lint needs to know about a feature pack without loading its weights: its kind, width
// (d_sae), default hook point, labels, direction names and max activations. Read from a SAELens
// `cfg.json` (`d_sae`, `hook_name` at the top level or under `metadata` as SAELens v6 writes it)
// and/or our `pack.json` manifest (docs/rules.md, "What lint reads from a pack").

import Foundation

/// The facts about a pack that rule checks use.
public struct PackSummary: Sendable, Equatable {
    public enum Kind: String, Sendable { case sae, directions }

    public var kind: Kind
    /// Number of latents (SAE packs).
    public var dSAE: Int?
    /// The hook point the pack was trained on, used when a rule names none.
    public var hook: String?
    /// Latent index by label (SAE packs with labels).
    public var labels: [String: Int]
    /// Direction name → its own hook point, if it has one (direction packs).
    public var directions: [String: String?]
    /// Max activation over the reference corpus, by latent index or direction name.
    public var latentMaxActivation: [Int: Double]
    public var directionMaxActivation: [String: Double]

    public init(kind: Kind, dSAE: Int? = nil, hook: String? = nil, labels: [String: Int] = [:],
                directions: [String: String?] = [:], latentMaxActivation: [Int: Double] = [:],
                directionMaxActivation: [String: Double] = [:]) {
        self.kind = kind
        self.dSAE = dSAE
        self.hook = hook
        self.labels = labels
        self.directions = directions
        self.latentMaxActivation = latentMaxActivation
        self.directionMaxActivation = directionMaxActivation
    }

    /// Reads the pack in `directory`. Problems become one message (`reason`) for the caller to locate.
    public static func read(directory: String) -> Result<PackSummary, PackProblem> {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            return .failure(PackProblem("no such directory \(directory)"))
        }
        guard isDirectory.boolValue else { return .failure(PackProblem("\(directory) is not a directory")) }
        let manifestPath = directory + "/pack.json", cfgPath = directory + "/cfg.json"
        let hasManifest = FileManager.default.fileExists(atPath: manifestPath)
        let hasCfg = FileManager.default.fileExists(atPath: cfgPath)
        guard hasManifest || hasCfg else {
            return .failure(PackProblem("\(directory) holds neither pack.json nor a SAELens cfg.json"))
        }
        var summary = PackSummary(kind: .sae)
        if hasCfg {
            switch readObject(cfgPath) {
            case .failure(let p): return .failure(p)
            case .success(let cfg):
                guard let d = cfg["d_sae"] as? Int, d > 0 else {
                    return .failure(PackProblem("\(cfgPath): expected a positive integer 'd_sae'"))
                }
                summary.dSAE = d
                let metadata = cfg["metadata"] as? [String: Any]
                summary.hook = (cfg["hook_name"] as? String) ?? (metadata?["hook_name"] as? String)
            }
        }
        if hasManifest {
            switch readObject(manifestPath) {
            case .failure(let p): return .failure(p)
            case .success(let m):
                if let problem = summary.merge(manifest: m, path: manifestPath, hasCfg: hasCfg) { return .failure(problem) }
            }
        }
        return .success(summary)
    }

    /// Reads our manifest: `kind` (sae | directions), `hook_name`, `d_sae`, `latents` ([{index,
    /// label?, max_activation?}]) and `directions` ([{name, hook_name?, max_activation?}]).
    private mutating func merge(manifest m: [String: Any], path: String, hasCfg: Bool) -> PackProblem? {
        if let k = m["kind"] {
            guard let s = k as? String, let kind = Kind(rawValue: s) else {
                return PackProblem("\(path): 'kind' must be \"sae\" or \"directions\"")
            }
            self.kind = kind
        }
        if let h = m["hook_name"] {
            guard let s = h as? String else { return PackProblem("\(path): 'hook_name' must be a string") }
            hook = s
        }
        if let d = m["d_sae"] {
            guard let n = d as? Int, n > 0 else { return PackProblem("\(path): 'd_sae' must be a positive integer") }
            if let cfg = dSAE, cfg != n { return PackProblem("\(path): d_sae \(n) disagrees with cfg.json's \(cfg)") }
            dSAE = n
        }
        if let list = m["latents"] {
            guard let items = list as? [[String: Any]] else { return PackProblem("\(path): 'latents' must be a list of objects") }
            for item in items {
                guard let index = item["index"] as? Int, index >= 0 else {
                    return PackProblem("\(path): every latent needs a non-negative integer 'index'")
                }
                if let label = item["label"] as? String { labels[label] = index }
                if let max = item["max_activation"] as? Double { latentMaxActivation[index] = max }
            }
        }
        if let list = m["directions"] {
            guard let items = list as? [[String: Any]] else { return PackProblem("\(path): 'directions' must be a list of objects") }
            for item in items {
                guard let name = item["name"] as? String else { return PackProblem("\(path): every direction needs a 'name'") }
                directions[name] = item["hook_name"] as? String
                if let max = item["max_activation"] as? Double { directionMaxActivation[name] = max }
            }
        }
        if kind == .sae, dSAE == nil {
            return PackProblem("\(path): an SAE pack needs 'd_sae' (in pack.json or cfg.json)")
        }
        return nil
    }

    private static func readObject(_ path: String) -> Result<[String: Any], PackProblem> {
        guard let data = FileManager.default.contents(atPath: path) else { return .failure(PackProblem("cannot read \(path)")) }
        guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            return .failure(PackProblem("\(path) is not a JSON object"))
        }
        return .success(object)
    }
}

/// Why a pack could not be summarized; the caller puts it at the pack's declaration.
public struct PackProblem: Error, Sendable, Equatable {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
}
