// An SAE's configuration from SAELens's cfg.json: the v6 layout (`architecture`, `k`, `metadata.*`)
// and the older flat one (`hook_point`, `activation_fn_str`, `activation_fn_kwargs.k`, boolean
// `normalize_activations`), upgraded the way SAELens's handle_pre_6_0_config does.

import Foundation
import ProbityFormats

/// The SAE's activation function.
public enum SAEArchitecture: Sendable, Equatable, CustomStringConvertible {
    /// `f = ReLU(pre)`.
    case standard
    /// `f = pre` where `pre > threshold[i]`, else 0 (then ReLU), per latent.
    case jumpReLU
    /// The `k` largest pre-activations (ties: lower index first), ReLU'd; the rest 0.
    case topK(Int)

    public var description: String {
        switch self {
        case .standard: return "standard"
        case .jumpReLU: return "jumprelu"
        case .topK(let k): return "topk (k=\(k))"
        }
    }
}

/// How the SAE scales its input before encoding (and its output back after decoding).
public enum ActivationNormalization: Sendable, Equatable, CustomStringConvertible {
    case none
    /// A constant input scale (Anthropic's April 2024 update). SAELens folds the factor into the
    /// weights when its pretrained directory knows it; cfg.json may carry it as `norm_scaling_factor`.
    /// Without one the input is used as is, which is what SAELens's `load_from_disk` does.
    case expectedAverageOnlyIn(scale: Float?)
    /// Each position scaled to norm √d_in (Anthropic's February 2024 update).
    case constantNormRescale

    public var description: String {
        switch self {
        case .none: return "none"
        case .expectedAverageOnlyIn(let s?): return "expected_average_only_in (scale \(s))"
        case .expectedAverageOnlyIn(nil): return "expected_average_only_in (no norm_scaling_factor: input used as is)"
        case .constantNormRescale: return "constant_norm_rescale"
        }
    }
}

/// What cfg.json says about an SAE.
public struct SAEConfig: Sendable, Equatable {
    public var dIn: Int
    public var dSAE: Int
    public var architecture: SAEArchitecture
    /// Subtract `b_dec` from the input before encoding.
    public var applyBDecToInput: Bool
    public var normalization: ActivationNormalization
    /// TransformerLens hook name the SAE was trained on, if the config names one.
    public var hookName: String?
    public var modelName: String?
    /// Whether cfg.json used the pre-v6 flat layout (and was upgraded).
    public var legacyLayout: Bool

    /// A configuration with SAELens's defaults: b_dec applied to the input, no normalisation.
    public init(dIn: Int, dSAE: Int, architecture: SAEArchitecture, applyBDecToInput: Bool = true,
                normalization: ActivationNormalization = .none, hookName: String? = nil,
                modelName: String? = nil, legacyLayout: Bool = false) {
        self.dIn = dIn
        self.dSAE = dSAE
        self.architecture = architecture
        self.applyBDecToInput = applyBDecToInput
        self.normalization = normalization
        self.hookName = hookName
        self.modelName = modelName
        self.legacyLayout = legacyLayout
    }

    /// Parses cfg.json bytes; `path` names the file in errors.
    public static func parse(_ data: Data, path: String) throws -> SAEConfig {
        let object = try StrictJSON.object(from: data, path: path, maxValues: StrictJSON.maxSmallDocumentValues)
        guard let cfg = object as? [String: Any] else {
            throw FeatureError.badJSON(path: path, reason: "expected an object at the top level")
        }
        let keys = JSONKeys(cfg, path: path)
        let dIn = try keys.positiveInt("d_in")
        let dSAE = try keys.positiveInt("d_sae")
        let meta = (cfg["metadata"] as? [String: Any]) ?? (cfg["meta"] as? [String: Any])
        let legacy = meta == nil

        // Architecture: v6 names it; the flat layout says "standard" with activation_fn "topk".
        let archName = try keys.string("architecture") ?? "standard"
        let activationFn = try keys.string("activation_fn_str") ?? keys.string("activation_fn") ?? "relu"
        let kwargsK = (cfg["activation_fn_kwargs"] as? [String: Any]).flatMap { JSONKeys($0, path: path).rawInt("k") }
        let architecture: SAEArchitecture
        switch archName {
        case "standard" where legacy && activationFn == "topk", "topk":
            guard let k = keys.rawInt("k") ?? kwargsK else { throw FeatureError.missingConfigKey(path: path, key: "k") }
            guard k >= 1 && k <= dSAE else {
                throw FeatureError.badConfigValue(path: path, key: "k", expected: "1 to d_sae (\(dSAE))", found: "\(k)")
            }
            architecture = .topK(k)
        case "standard":
            guard activationFn == "relu" else {
                throw FeatureError.badConfigValue(path: path, key: "activation_fn", expected: "relu or topk", found: activationFn)
            }
            architecture = .standard
        case "jumprelu":
            architecture = .jumpReLU
        default:
            throw FeatureError.unknownArchitecture(path: path, found: archName)
        }

        let applyBDec = try keys.bool("apply_b_dec_to_input") ?? true

        // Normalisation: a string in v6; a boolean in old files (true meant expected_average_only_in).
        let normalization: ActivationNormalization
        let scale = try keys.double("norm_scaling_factor").map(Float.init)
        if let s = scale, !(s.isFinite && s > 0) {
            throw FeatureError.badConfigValue(path: path, key: "norm_scaling_factor", expected: "a positive number", found: "\(s)")
        }
        switch cfg["normalize_activations"] {
        case nil, is NSNull:
            normalization = .none
        case let flag as NSNumber where isJSONBool(flag):
            normalization = flag.boolValue ? .expectedAverageOnlyIn(scale: scale) : .none
        case let name as String:
            switch name {
            case "none": normalization = .none
            case "expected_average_only_in": normalization = .expectedAverageOnlyIn(scale: scale)
            case "constant_norm_rescale": normalization = .constantNormRescale
            default: throw FeatureError.unknownNormalization(path: path, found: name)
            }
        case let other?:
            throw FeatureError.badConfigValue(path: path, key: "normalize_activations", expected: "a string", found: "\(other)")
        }

        let metaKeys = meta.map { JSONKeys($0, path: path) }
        let hookName = try metaKeys?.string("hook_name") ?? keys.string("hook_name") ?? keys.string("hook_point")
        let modelName = try metaKeys?.string("model_name") ?? keys.string("model_name")
        return SAEConfig(dIn: dIn, dSAE: dSAE, architecture: architecture, applyBDecToInput: applyBDec,
                         normalization: normalization, hookName: hookName, modelName: modelName, legacyLayout: legacy)
    }
}

/// Typed lookups in a JSON object, with errors that name the key and the file.
struct JSONKeys {
    let object: [String: Any]
    let path: String

    init(_ object: [String: Any], path: String) {
        self.object = object
        self.path = path
    }

    func string(_ key: String) throws -> String? {
        switch object[key] {
        case nil, is NSNull: return nil
        case let s as String: return s
        case let other?: throw FeatureError.badConfigValue(path: path, key: key, expected: "a string", found: "\(other)")
        }
    }

    func bool(_ key: String) throws -> Bool? {
        switch object[key] {
        case nil, is NSNull: return nil
        case let n as NSNumber where isJSONBool(n): return n.boolValue
        case let other?: throw FeatureError.badConfigValue(path: path, key: key, expected: "true or false", found: "\(other)")
        }
    }

    func double(_ key: String) throws -> Double? {
        switch object[key] {
        case nil, is NSNull: return nil
        case let n as NSNumber where !isJSONBool(n): return n.doubleValue
        case let other?: throw FeatureError.badConfigValue(path: path, key: key, expected: "a number", found: "\(other)")
        }
    }

    /// An integer if the key holds a whole number, else nil.
    func rawInt(_ key: String) -> Int? {
        guard let n = object[key] as? NSNumber, !isJSONBool(n) else { return nil }
        let d = n.doubleValue
        guard d.rounded() == d, abs(d) < 1e15 else { return nil }
        return Int(d)
    }

    func positiveInt(_ key: String) throws -> Int {
        guard object[key] != nil else { throw FeatureError.missingConfigKey(path: path, key: key) }
        guard let v = rawInt(key), v > 0, v <= 1 << 24 else {
            throw FeatureError.badConfigValue(path: path, key: key, expected: "a positive integer", found: "\(object[key] ?? "")")
        }
        return v
    }
}

/// Whether an NSNumber from JSONSerialization is a JSON boolean rather than a number.
func isJSONBool(_ n: NSNumber) -> Bool {
    #if canImport(Darwin)
    return CFGetTypeID(n) == CFBooleanGetTypeID()
    #else
    return type(of: n) == type(of: NSNumber(value: true))
    #endif
}
