// What lint needs to know about a feature pack without loading its weights: kind, width (d_sae),
// hook point, labels with max activations, direction names, a probe's name. Reads the pack layout of
// docs/features.md: `pack.json` + `labels.json` (through ProbityFeatures' own reader) + SAELens
// `cfg.json` or a directions file (names from its header), or a bare SAELens directory.

import Foundation
import ProbityFeatures
import ProbityFormats
import ProbityLM

/// The facts about a pack that rule checks use.
public struct PackSummary: Sendable, Equatable {
    public enum Kind: String, Sendable { case sae, directions, probe }

    public var kind: Kind
    /// Number of latents (SAE packs).
    public var dSAE: Int?
    /// The pack's hook point, used when a rule names none.
    public var hook: HookPoint?
    /// Feature ids (decimal latent indices, or direction names) by label name; a name given to
    /// more than one feature maps to all of them.
    public var labels: [String: [String]]
    /// Direction name → its own hook point, when it differs from the pack's (direction packs).
    public var directions: [String: HookPoint?]
    /// Max activation over the reference corpus, by feature id.
    public var maxActivation: [String: Double]
    /// The probe's name (probe packs).
    public var probe: String?

    public init(kind: Kind, dSAE: Int? = nil, hook: HookPoint? = nil, labels: [String: [String]] = [:],
                directions: [String: HookPoint?] = [:], maxActivation: [String: Double] = [:], probe: String? = nil) {
        self.kind = kind
        self.dSAE = dSAE
        self.hook = hook
        self.labels = labels
        self.directions = directions
        self.maxActivation = maxActivation
        self.probe = probe
    }

    /// Reads the pack in `directory`; a problem is one message for the caller to locate.
    public static func read(directory: String) -> Result<PackSummary, PackProblem> {
        do {
            return .success(try load(directory))
        } catch let problem as PackProblem {
            return .failure(problem)
        } catch {
            return .failure(PackProblem("\(error)"))
        }
    }

    private static func load(_ directory: String) throws -> PackSummary {
        let manifestPath = directory + "/pack.json", cfgPath = directory + "/cfg.json"
        let fm = FileManager.default
        guard fm.fileExists(atPath: manifestPath) else {
            guard fm.fileExists(atPath: cfgPath) else {
                throw PackProblem("\(directory) holds neither pack.json nor a SAELens cfg.json")
            }
            let cfg = try SAELensConfig(cfgPath)
            guard let hook = cfg.hook else {
                throw PackProblem("\(cfgPath) names no hook (metadata.hook_name), and there is no pack.json to say it")
            }
            return PackSummary(kind: .sae, dSAE: cfg.dSAE, hook: try hookPoint(hook, in: cfgPath))
        }
        let manifest = try object(manifestPath)
        guard let kindName = manifest["kind"] as? String, let kind = Kind(rawValue: kindName) else {
            throw PackProblem("\(manifestPath): 'kind' must be \"sae\", \"directions\" or \"probe\"")
        }
        guard let hook = manifest["hook"] as? String else { throw PackProblem("\(manifestPath): missing string 'hook'") }
        var summary = PackSummary(kind: kind, hook: try hookPoint(hook, in: manifestPath))
        if let file = manifest["labels"] as? String {
            try summary.readLabels(directory + "/" + file)
        }
        switch kind {
        case .sae:
            guard fm.fileExists(atPath: cfgPath) else { throw PackProblem("\(directory): an SAE pack needs cfg.json") }
            summary.dSAE = try SAELensConfig(cfgPath).dSAE
        case .directions:
            let file = (manifest["directions"] as? String) ?? "directions.safetensors"
            try summary.readDirections(directory + "/" + file)
        case .probe:
            // The whole pack, read as a run reads it: a probe is one small file, and its checks
            // (keys, tensors, shapes, finite values, recorded items) belong to lint too.
            do {
                summary.probe = try FeaturePack.load(path: directory).probe?.name
            } catch let e as FeatureError {
                throw PackProblem(e.description)
            }
        }
        return summary
    }

    /// The labels file, read as the feature engine reads it.
    private mutating func readLabels(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw PackProblem("cannot read \(path)") }
        try FeatureLabels.load(path: path).forEachHeadline { label in
            if let name = label.name { labels[name, default: []].append(label.id) }
            if let max = label.maxActivation { maxActivation[label.id] = Double(max) }
        }
        for name in labels.keys { labels[name]?.sort { (Int($0) ?? Int.max, $0) < (Int($1) ?? Int.max, $1) } }
    }

    /// Names (and per-direction hooks, metadata `hook.<name>`) from a safetensors header, or the
    /// `direction.N` tensors of a llama.cpp control vector.
    private mutating func readDirections(_ path: String) throws {
        guard FileManager.default.fileExists(atPath: path) else { throw PackProblem("no directions file \(path)") }
        if path.hasSuffix(".gguf") {
            let file = try GGUFFile(path: path)
            for t in file.tensors {
                guard t.name.hasPrefix("direction."), let block = Int(t.name.dropFirst("direction.".count)) else { continue }
                directions[t.name] = .residPost(block)
            }
        } else {
            let file = try SafeTensorsFile(path: path)
            for t in file.tensors {
                let own: HookPoint? = try file.metadata[FeaturePack.hookMetadataKey(t.name)]
                    .map { try Self.hookPoint($0, in: "\(path): direction '\(t.name)'") }
                directions[t.name] = .some(own)   // nil: the pack's hook, still a known direction
            }
        }
    }

    /// A hook name from a pack's files, read once here: a name that is not a hook point is the
    /// pack's problem, reported at its declaration rather than passed on as text.
    private static func hookPoint(_ name: String, in place: String) throws -> HookPoint {
        guard let point = HookPoint(name: name) else {
            throw PackProblem("\(place): '\(name)' is not a hook point name (expected e.g. blocks.15.hook_resid_post)")
        }
        return point
    }

    private static func object(_ path: String) throws -> [String: Any] {
        guard let data = try WholeFile.contents(path, what: "pack file", limit: FileSizeLimits.smallJSON) else { throw PackProblem("cannot read \(path)") }
        guard let object = try strictObject(data, path) as? [String: Any] else {
            throw PackProblem("\(path) is not a JSON object")
        }
        return object
    }
}

/// The two `cfg.json` facts lint needs, in SAELens v6 layout or the older flat one.
private struct SAELensConfig {
    var dSAE: Int
    var hook: String?

    init(_ path: String) throws {
        guard let data = try WholeFile.contents(path, what: "cfg.json", limit: FileSizeLimits.smallJSON),
              let cfg = try strictObject(data, path) as? [String: Any] else {
            throw PackProblem("\(path) is not a JSON object")
        }
        guard let d = cfg["d_sae"] as? Int, d > 0 else { throw PackProblem("\(path): expected a positive integer 'd_sae'") }
        dSAE = d
        let metadata = cfg["metadata"] as? [String: Any]
        hook = (metadata?["hook_name"] as? String) ?? (cfg["hook_name"] as? String) ?? (cfg["hook_point"] as? String)
    }
}

/// Why a pack could not be summarized; the caller puts it at the pack's declaration.
public struct PackProblem: Error, Sendable, Equatable, CustomStringConvertible {
    public var reason: String
    public init(_ reason: String) { self.reason = reason }
    public var description: String { reason }
}

/// A pack file's JSON, strictly (RFC 8259); a syntax error is the pack's problem.
private func strictObject(_ data: Data, _ path: String) throws -> Any {
    do { return try StrictJSON.object(from: data, path: path, maxValues: StrictJSON.maxSmallDocumentValues) } catch let e as JSONSyntaxError { throw PackProblem(e.description) }
}
