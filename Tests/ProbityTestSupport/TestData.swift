// What tests read from the cache that scripts/setup fills (scripts/test runs it first): the default
// model, llama.cpp's test vocabularies, corpora. One policy for all of them: a test that needs one
// and finds it missing fails, naming the setup step that fetches it; none skips.

import Foundation
import ProbityLM

/// Paths to set-up data, checked before a test uses them.
public enum TestData {
    /// A file the tests need that is not there, with the step that fetches it.
    public struct Missing: Error, CustomStringConvertible {
        public let description: String
    }

    /// The default model's GGUF file; throws naming scripts/setup when it is not fetched.
    public static func defaultModelPath() throws -> String {
        try required(ModelLocator.defaultModelPath, what: "the default model", setup: "scripts/setup")
    }

    /// Gemma 3 270M's GGUF file (`gemma3-270m`); throws naming scripts/setup --models when it is not fetched.
    public static func gemma3ModelPath() throws -> String {
        try required(ModelLocator.modelsDirectory + "/" + (ModelLocator.named["gemma3-270m"] ?? ""),
                     what: "Gemma 3 270M", setup: "scripts/setup --models")
    }

    /// A file under the cache directory (`vocab/...`, `corpora/...`), fetched by `setup`.
    public static func cacheFile(_ relativePath: String, what: String, setup: String = "scripts/setup") throws -> String {
        try required(ModelLocator.cacheDirectory + "/" + relativePath, what: what, setup: setup)
    }

    /// Debian's `chromium` (on PATH), the headless browser the HTML page tests drive; throws
    /// naming scripts/setup, which installs it, when it is missing.
    public static func chromium() throws -> String {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") where FileManager.default.isExecutableFile(atPath: "\(dir)/chromium") {
            return "\(dir)/chromium"
        }
        throw Missing(description: "missing chromium on PATH (Debian's chromium, the headless browser of the HTML page tests): "
                      + "run scripts/setup to install it (scripts/test does)")
    }

    /// The DevTools client (websocket-client) scripts/lib/browser-check.py drives the browser with.
    public static func devToolsClient() throws -> String {
        try cacheFile("python/websocket/__init__.py", what: "websocket-client, the browser tests' DevTools client")
    }

    /// `path` when it exists; else a failure naming what it is and how to fetch it.
    public static func required(_ path: String, what: String, setup: String) throws -> String {
        guard FileManager.default.fileExists(atPath: path) else {
            // scripts/test runs plain scripts/setup; data behind a setup flag is fetched on request.
            let note = setup == "scripts/setup" || setup == "scripts/setup --models" ? " (scripts/test does)" : ""
            throw Missing(description: "missing \(path) (\(what)): run \(setup) to fetch it\(note)")
        }
        return path
    }
}
