// Resolves a model argument: `default` (or nothing) means the default model in the cache, a name
// from `ModelLocator.named` another model `scripts/setup --models` fetched, anything else a path. The cache lives in $PROBITY_CACHE, else $XDG_CACHE_HOME/probity,
// else ~/.cache/probity; scripts/setup fills it.

import Foundation
import ProbityTensor

/// Where Probity keeps downloaded data, and how a model name becomes a file.
public enum ModelLocator {
    /// File name of the default model (SmolLM2-135M-Instruct, Q4_1) inside `modelsDirectory`.
    public static let defaultModelFile = "SmolLM2-135M-Instruct.Q4_1.gguf"

    /// The cache root: `$PROBITY_CACHE`, else `$XDG_CACHE_HOME/probity`, else `~/.cache/probity`.
    public static var cacheDirectory: String {
        let env = ProcessInfo.processInfo.environment
        if let dir = env["PROBITY_CACHE"], !dir.isEmpty { return dir }
        if let xdg = env["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/probity" }
        return NSHomeDirectory() + "/.cache/probity"
    }

    public static var modelsDirectory: String { cacheDirectory + "/models" }

    public static var defaultModelPath: String { modelsDirectory + "/" + defaultModelFile }

    /// Models known by name, each a file in `modelsDirectory` that `scripts/setup --models` fetches.
    public static let named: [String: String] = [
        "gemma3-270m": "gemma-3-270m-q4_k_m.gguf",
    ]

    /// The file a model argument names. `nil` or `"default"` is the default model, which must
    /// have been fetched by `scripts/setup`.
    public static func resolve(_ name: String?) throws -> String {
        guard let name, name != "default" else {
            let path = defaultModelPath
            guard FileManager.default.fileExists(atPath: path) else {
                throw ModelLocatorError.defaultModelMissing(path: path)
            }
            return path
        }
        if let file = named[name] {
            let path = modelsDirectory + "/" + file
            guard FileManager.default.fileExists(atPath: path) else {
                throw ModelLocatorError.namedModelMissing(name, path: path)
            }
            return path
        }
        guard FileManager.default.fileExists(atPath: name) else {
            throw ModelLocatorError.notFound(name)
        }
        return name
    }
}

public enum ModelLocatorError: Error, CustomStringConvertible, Equatable {
    case defaultModelMissing(path: String)
    case namedModelMissing(String, path: String)
    case notFound(String)

    public var description: String {
        switch self {
        case let .defaultModelMissing(path):
            return "the default model is not at \(path); run scripts/setup to fetch it (set PROBITY_CACHE to use another cache)"
        case let .namedModelMissing(name, path):
            return "the model '\(name)' is not at \(path); run scripts/setup --models to fetch it (set PROBITY_CACHE to use another cache)"
        case let .notFound(name):
            return "\(name): no such model file (expected a .gguf path, 'default' or one of \(ModelLocator.named.keys.sorted().map { "'\($0)'" }.joined(separator: ", ")))"
        }
    }
}
