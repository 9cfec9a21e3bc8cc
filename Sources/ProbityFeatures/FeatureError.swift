// The one error enum of ProbityFeatures: every way an SAE, a direction, a control vector, a feature
// pack or an intervention can be wrong. Each case carries the file or argument and expected vs found.

/// Bad feature input. `description` is the one message a user sees.
public enum FeatureError: Error, CustomStringConvertible, Equatable {
    // SAE config (cfg.json).
    case missingFile(path: String, what: String)
    case badJSON(path: String, reason: String)
    case missingConfigKey(path: String, key: String)
    case badConfigValue(path: String, key: String, expected: String, found: String)
    case unknownArchitecture(path: String, found: String)
    case unknownNormalization(path: String, found: String)

    // SAE weights.
    case missingTensor(path: String, name: String)
    case tensorShape(path: String, name: String, expected: [Int], found: [Int])
    case tensorType(path: String, name: String, expected: String, found: String)
    case nonFinite(path: String, name: String, index: Int)

    // Directions and control vectors.
    case controlVectorTensorName(path: String, name: String)
    case controlVectorLayerZero(path: String)
    case controlVectorTensorType(path: String, name: String, found: String)
    case controlVectorShape(path: String, name: String, found: [Int])
    case controlVectorWidth(path: String, name: String, expected: Int, found: Int)
    case controlVectorEmpty(path: String)
    case controlVectorLayer(path: String, layer: Int, blocks: Int)
    case controlVectorArgument(String)

    // Packs and compatibility with the model.
    case notAPack(path: String)
    case badManifest(path: String, key: String, expected: String, found: String)
    case widthMismatch(pack: String, dIn: Int, modelWidth: Int)
    case unknownHook(pack: String, hook: String, reason: String)
    case modelMismatch(pack: String, detail: String)
    case badLabels(path: String, reason: String)
    /// A probe pack's manifest or probe file is malformed.
    case badProbe(path: String, reason: String)

    // Feature references and actions.
    case latentOutOfRange(pack: String, index: Int, dSAE: Int)
    case unknownFeature(pack: String, name: String)
    case badAction(argument: String, reason: String)
    case noMaxActivation(pack: String, index: Int)
    case directionWidth(name: String, expected: Int, found: Int)
    case zeroDirection(name: String)
    case needsSAE(pack: String, action: String)
    /// An edit of a probe: a probe is read (detection, triggers), never edited.
    case probeIsReadOnly(name: String, action: String)

    // Contrastive derivation.
    case badPairs(path: String, line: Int, reason: String)
    case pairCount(positive: Int, negative: Int)
    case emptyPrompt
    case noReply(line: Int)
    /// A prompt set's line holds chat messages, but there is no chat format to render them with.
    case noChatFormat(path: String, line: Int)

    // Statistics and search.
    case noContexts(path: String)
    case promptSetSize(path: String, count: Int, minimum: Int)

    public var description: String {
        switch self {
        case let .missingFile(path, what):
            return "\(path): no \(what) here"
        case let .badJSON(path, reason):
            return "\(path): not valid JSON: \(reason)"
        case let .missingConfigKey(path, key):
            return "\(path): missing key '\(key)'"
        case let .badConfigValue(path, key, expected, found):
            return "\(path): '\(key)': expected \(expected), found \(found)"
        case let .unknownArchitecture(path, found):
            return "\(path): architecture '\(found)' is not supported (supported: standard, jumprelu, topk)"
        case let .unknownNormalization(path, found):
            return "\(path): normalize_activations '\(found)' is not supported (supported: none, expected_average_only_in, constant_norm_rescale)"
        case let .missingTensor(path, name):
            return "\(path): missing tensor '\(name)'"
        case let .tensorShape(path, name, expected, found):
            return "\(path): tensor \(name): expected shape \(expected), found \(found)"
        case let .tensorType(path, name, expected, found):
            return "\(path): tensor \(name): expected \(expected), found \(found)"
        case let .nonFinite(path, name, index):
            return "\(path): tensor \(name) holds a NaN or infinity at element \(index)"
        case let .controlVectorTensorName(path, name):
            return "\(path): tensor '\(name)' is not a control-vector direction (expected direction.N with N ≥ 1)"
        case let .controlVectorLayerZero(path):
            return "\(path): tensor direction.0: control-vector layers start at 1 (block 0's output takes no direction, as in llama.cpp)"
        case let .controlVectorTensorType(path, name, found):
            return "\(path): tensor \(name): expected F32, found \(found)"
        case let .controlVectorShape(path, name, found):
            return "\(path): tensor \(name): expected a 1-D vector, found shape \(found)"
        case let .controlVectorWidth(path, name, expected, found):
            return "\(path): tensor \(name): expected \(expected) values (the model width), found \(found)"
        case let .controlVectorEmpty(path):
            return "\(path): no direction.N tensors: not a control vector"
        case let .controlVectorLayer(path, layer, blocks):
            return "\(path): direction.\(layer) is past the model's last block (\(blocks) blocks: layers 1-\(blocks - 1))"
        case let .controlVectorArgument(arg):
            return "control vector '\(arg)': expected FILE.gguf or FILE.gguf:SCALE"
        case let .notAPack(path):
            return "\(path): not a feature pack (expected a directory with pack.json, or a SAELens directory with cfg.json and sae_weights.safetensors)"
        case let .badManifest(path, key, expected, found):
            return "\(path): '\(key)': expected \(expected), found \(found)"
        case let .widthMismatch(pack, dIn, modelWidth):
            return "\(pack): d_in is \(dIn) but the model's width is \(modelWidth)"
        case let .unknownHook(pack, hook, reason):
            return "\(pack): hook '\(hook)': \(reason)"
        case let .modelMismatch(pack, detail):
            return "\(pack): the pack belongs to another model: \(detail)"
        case let .badLabels(path, reason):
            return "\(path): \(reason)"
        case let .badProbe(path, reason):
            return "\(path): \(reason)"
        case let .latentOutOfRange(pack, index, dSAE):
            return "feature \(index) out of range for pack '\(pack)' (d_sae \(dSAE))"
        case let .unknownFeature(pack, name):
            return "pack '\(pack)' has no feature or direction named '\(name)'"
        case let .badAction(argument, reason):
            return "'\(argument)': \(reason)"
        case let .noMaxActivation(pack, index):
            return "feature \(index) of pack '\(pack)' has no max activation in its labels, so a value written 'Nx' has no meaning"
        case let .directionWidth(name, expected, found):
            return "direction '\(name)': expected \(expected) values, found \(found)"
        case let .zeroDirection(name):
            return "direction '\(name)' is zero: it has no direction to project on"
        case let .needsSAE(pack, action):
            return "pack '\(pack)': \(action) needs an SAE pack"
        case let .probeIsReadOnly(name, action):
            return "probe '\(name)': \(action) cannot edit a probe (a probe is read, for detection and triggers; steer with a direction or an SAE latent)"
        case let .badPairs(path, line, reason):
            return "\(path):\(line): \(reason)"
        case let .noChatFormat(path, line):
            return "\(path):\(line): chat messages need the model's chat template, and it has none (name a chat format to render them with)"
        case let .pairCount(positive, negative):
            return "contrast pairs: \(positive) positive prompts but \(negative) negative ones (they pair up line by line)"
        case .emptyPrompt:
            return "a prompt encodes to no tokens: nothing to run"
        case let .noReply(line):
            return "the prompt on line \(line) has no reply to average over: averaging over the reply needs chat messages (\"messages\": [...]) whose last message has text"
        case let .noContexts(path):
            return "\(path): the labels hold no top contexts to search (gather statistics over a corpus into them first)"
        case let .promptSetSize(path, count, minimum):
            return "\(path): \(count == 0 ? "no prompts" : "\(count) prompt\(count == 1 ? "" : "s")"): a prompt set needs at least \(minimum) (one per line) for a variance"
        }
    }
}
