// A pack's labels file: feature id → name, description, max activation over a reference corpus,
// firing frequency, activation histogram and top activating contexts, plus a record of what was scanned. Latent ids are
// their indices written as decimal strings; direction ids are their names. Layout: docs/features.md.

import Foundation
import ProbityFormats

/// One top activating context of a latent: a window of tokens around the position where it fired
/// most strongly within one corpus window, with the latent's activation at each token.
public struct FeatureContext: Sendable, Equatable {
    /// The corpus file's name (no directory).
    public var source: String
    /// The document's index in its file, counting every document of every split from 0.
    public var document: Int
    /// The tokens' text pieces, in order.
    public var tokens: [String]
    /// The latent's activation at each token (0 where it is off or the token is special).
    public var activations: [Float]
    /// Index in `tokens` of the peak.
    public var peakIndex: Int
    /// The activation at the peak.
    public var peakActivation: Float

    public init(source: String, document: Int, tokens: [String], activations: [Float], peakIndex: Int, peakActivation: Float) {
        self.source = source
        self.document = document
        self.tokens = tokens
        self.activations = activations
        self.peakIndex = peakIndex
        self.peakActivation = peakActivation
    }

    /// The context's text: its pieces joined.
    public var text: String { tokens.joined() }
}

/// One feature's label.
public struct FeatureLabel: Sendable, Equatable {
    public var id: String
    public var name: String?
    public var description: String?
    /// The largest activation seen over the pack's reference corpus: the unit of `Nx` values.
    public var maxActivation: Float?
    /// The fraction of scanned (non-special) positions where the latent is active.
    public var frequency: Double?
    /// Every activation where the latent fired over the scan, counted in bins on [0, max activation].
    public var histogram: ActivationHistogram?
    /// Top activating contexts, strongest first.
    public var contexts: [FeatureContext]?
    public var topExamples: [String]?

    /// A label; only `id` is required.
    public init(id: String, name: String? = nil, description: String? = nil, maxActivation: Float? = nil,
                frequency: Double? = nil, histogram: ActivationHistogram? = nil, contexts: [FeatureContext]? = nil,
                topExamples: [String]? = nil) {
        self.id = id
        self.name = name
        self.description = description
        self.maxActivation = maxActivation
        self.frequency = frequency
        self.histogram = histogram
        self.contexts = contexts
        self.topExamples = topExamples
    }
}

/// What a statistics scan read: enough to say where a labels file's numbers came from, and nothing
/// that changes between identical runs (no dates, no timings), so reruns diff cleanly.
public struct FeatureScanRecord: Sendable, Equatable {
    /// Corpus file names, in scan order.
    public var corpora: [String]
    /// `train`, `held-out` or `all`.
    public var split: String
    /// Positions scanned (non-special tokens).
    public var tokens: Int
    /// Tokens per model window.
    public var window: Int
    public var hook: String
    public var modelName: String?
    public var modelSHA256: String?
    /// Tokens kept before and after each context's peak, and contexts kept per latent.
    public var before: Int
    public var after: Int
    public var contextsPerLatent: Int

    public init(corpora: [String], split: String, tokens: Int, window: Int, hook: String, modelName: String?,
                modelSHA256: String?, before: Int, after: Int, contextsPerLatent: Int) {
        self.corpora = corpora
        self.split = split
        self.tokens = tokens
        self.window = window
        self.hook = hook
        self.modelName = modelName
        self.modelSHA256 = modelSHA256
        self.before = before
        self.after = after
        self.contextsPerLatent = contextsPerLatent
    }
}

/// All labels of a pack, by feature id: those of a labels file, decoded from it when asked for
/// (`load`), and those set in memory, which take precedence.
public struct FeatureLabels: Sendable, Equatable {
    /// Labels set in memory (built, or set over a file's).
    private var inMemory: [String: FeatureLabel] = [:]
    /// The labels file these were loaded from, read in place.
    private var file: LabelsFile?
    /// What the statistics were computed from, when `probity features stats` wrote them.
    public var scan: FeatureScanRecord?

    /// Labels by id; a later duplicate id replaces an earlier one.
    public init(_ labels: [FeatureLabel] = [], scan: FeatureScanRecord? = nil) {
        for l in labels { inMemory[l.id] = l }
        self.scan = scan
    }

    /// The label of a feature by id (a direction's name).
    /// - Complexity: a hash lookup; a label from the file is decoded from it on each call.
    public subscript(id: String) -> FeatureLabel? { inMemory[id] ?? file?.label(id) }
    /// The label of SAE latent `i`.
    public subscript(latent i: Int) -> FeatureLabel? { self[String(i)] }

    /// Adds or replaces the label with `label.id`.
    public mutating func set(_ label: FeatureLabel) { inMemory[label.id] = label }

    /// How many features have labels.
    public var count: Int {
        guard let file else { return inMemory.count }
        return file.count + inMemory.keys.filter { file.entry(of: $0) == nil }.count
    }

    /// The id of the feature labelled `name` (exact match), if exactly one has it.
    public func id(named name: String) -> String? {
        var hits = inMemory.values.filter { $0.name == name }.map(\.id)
        if let file {
            for n in file.entries(named: name) {
                if let id = file.id(ofEntry: n), inMemory[id] == nil { hits.append(id) }
            }
        }
        return hits.count == 1 ? hits[0] : nil
    }

    public var isEmpty: Bool { count == 0 }

    /// Whether any label holds top contexts (written by a statistics scan).
    public var hasContexts: Bool {
        if inMemory.values.contains(where: { $0.contexts != nil }) { return true }
        guard let file, file.hasContexts else { return false }
        if inMemory.isEmpty { return true }
        return file.entries.contains { n in file.id(ofEntry: n).map { inMemory[$0] == nil } ?? false && file.label(ofEntry: n)?.contexts != nil }
    }

    /// Calls `body` with every label, sorted by id (numerically when both are numbers), decoding
    /// one label at a time.
    /// - Complexity: O(n log n); memory: the ids and one label.
    public func forEach(_ body: (FeatureLabel) throws -> Void) rethrows {
        try forEach(body, memory: { $0 }, file: { file, n in file.label(ofEntry: n) })
    }

    /// `forEach` without the statistics: each label's id, name, description, max activation and
    /// frequency, in the same order, with `histogram`, `contexts` and `topExamples` left nil. A
    /// labels file's features are read for those members alone, so this costs a fraction of
    /// `forEach` on a file with contexts (the file was checked whole when it was loaded).
    public func forEachHeadline(_ body: (FeatureLabel) throws -> Void) rethrows {
        try forEach(body, memory: { l in
            FeatureLabel(id: l.id, name: l.name, description: l.description, maxActivation: l.maxActivation, frequency: l.frequency)
        }, file: { file, n in file.headline(ofEntry: n) })
    }

    /// Every label in id order, those in memory given by `memory`, those of the file by `file`.
    private func forEach(_ body: (FeatureLabel) throws -> Void, memory: (FeatureLabel) -> FeatureLabel,
                         file read: (LabelsFile, Int) -> FeatureLabel?) rethrows {
        enum Source { case memory(String), file(Int) }
        var all: [(id: String, source: Source)] = inMemory.keys.map { ($0, .memory($0)) }
        if let file {
            for n in file.entries {
                if let id = file.id(ofEntry: n), inMemory[id] == nil { all.append((id, .file(n))) }
            }
        }
        all.sort { Self.precedes($0.id, $1.id) }
        for (_, source) in all {
            switch source {
            case .memory(let id): if let l = inMemory[id] { try body(memory(l)) }
            case .file(let n): if let file, let l = read(file, n) { try body(l) }
            }
        }
    }

    /// The labels sorted by id (numerically when both are numbers), all decoded at once: for
    /// small sets; `forEach` reads a labels file one label at a time.
    public var sorted: [FeatureLabel] {
        var out: [FeatureLabel] = []
        forEach { out.append($0) }
        return out
    }

    /// Sorting order of ids: numbers first, numerically, then the others.
    static func precedes(_ a: String, _ b: String) -> Bool {
        if let x = Int(a), let y = Int(b) { return x < y }
        if (Int(a) == nil) != (Int(b) == nil) { return Int(a) != nil }
        return a < b
    }

    public static func == (lhs: FeatureLabels, rhs: FeatureLabels) -> Bool {
        guard lhs.scan == rhs.scan, lhs.count == rhs.count else { return false }
        var same = true
        lhs.forEach { l in if same, rhs[l.id] != l { same = false } }
        return same
    }

    /// Reads a labels file: `{"features": [{"id": "12", "name": ..., "max_activation": ...}, ...]}`,
    /// with the optional statistics (`frequency`, `histogram`, `contexts`) and top-level `scan`.
    /// Integer ids are accepted for latents. The file is mapped and checked whole (strict JSON,
    /// then every feature in order, with the messages `decodedCarefully` gives), then kept as an
    /// index: each label is decoded from the file when asked for (`FeatureLabels+File.swift`).
    public static func load(path: String) throws -> FeatureLabels {
        let (file, scan) = try LabelsFile.opened(path)
        var labels = FeatureLabels(scan: scan)
        labels.file = file
        return labels
    }

    /// The whole file decoded at once, typed when it can be, else carefully: the reference the
    /// indexed reading (`load`) is tested against.
    static func decodedEagerly(_ data: Data, path: String) throws -> FeatureLabels {
        try StrictJSON.validate(data, path: path)
        if let labels = decodedFast(data) { return labels }
        return try decodedCarefully(data, path: path)
    }

    /// The labels of `data` read through Foundation's JSON objects, each value checked and named
    /// when wrong.
    static func decodedCarefully(_ data: Data, path: String) throws -> FeatureLabels {
        let object = try StrictJSON.object(from: data, path: path)
        guard let top = object as? [String: Any], let list = top["features"] as? [[String: Any]] else {
            throw FeatureError.badLabels(path: path, reason: "expected {\"features\": [...]} with one object per feature")
        }
        var labels: [FeatureLabel] = []
        labels.reserveCapacity(list.count)
        for (n, entry) in list.enumerated() {
            labels.append(try carefulLabel(entry, number: n, path: path))
        }
        var scan: FeatureScanRecord?
        if let raw = top["scan"], !(raw is NSNull) {
            scan = try parseScan(raw, path: path)
        }
        return FeatureLabels(labels, scan: scan)
    }

    /// Feature `n` of a labels file, each value checked and named when wrong.
    static func carefulLabel(_ entry: [String: Any], number n: Int, path: String) throws -> FeatureLabel {
        let keys = JSONKeys(entry, path: path)
        let id: String
        if let s = entry["id"] as? String { id = s } else if let i = keys.rawInt("id") { id = String(i) } else {
            throw FeatureError.badLabels(path: path, reason: "features[\(n)]: 'id' must be a string or an integer")
        }
        let max = try keys.double("max_activation").map(Float.init)
        if let max, !max.isFinite {
            throw FeatureError.badLabels(path: path, reason: "features[\(n)]: max_activation is not finite")
        }
        let frequency = try keys.double("frequency")
        if let f = frequency, !(f >= 0 && f <= 1) {
            throw FeatureError.badLabels(path: path, reason: "features[\(n)] (id \(id)): frequency must be between 0 and 1, found \(f)")
        }
        var histogram: ActivationHistogram?
        if let raw = entry["histogram"], !(raw is NSNull) {
            histogram = try parseHistogram(raw, path: path, at: "features[\(n)] (id \(id)).histogram")
        }
        var contexts: [FeatureContext]?
        if let raw = entry["contexts"], !(raw is NSNull) {
            guard let list = raw as? [Any] else {
                throw FeatureError.badLabels(path: path, reason: "features[\(n)] (id \(id)): 'contexts' must be a list")
            }
            contexts = try list.enumerated().map { m, c in
                try parseContext(c, path: path, at: "features[\(n)] (id \(id)).contexts[\(m)]")
            }
        }
        return FeatureLabel(id: id, name: try keys.string("name"), description: try keys.string("description"),
                            maxActivation: max, frequency: frequency, histogram: histogram, contexts: contexts,
                            topExamples: entry["top_examples"] as? [String])
    }

    private static func parseContext(_ value: Any, path: String, at place: String) throws -> FeatureContext {
        func bad(_ reason: String) -> FeatureError { .badLabels(path: path, reason: "\(place): \(reason)") }
        guard let o = value as? [String: Any] else { throw bad("expected an object") }
        let keys = JSONKeys(o, path: path)
        guard let source = o["source"] as? String else { throw bad("'source' must be a string") }
        guard let document = keys.rawInt("document"), document >= 0 else { throw bad("'document' must be a whole number ≥ 0") }
        guard let tokens = o["tokens"] as? [String] else { throw bad("'tokens' must be a list of strings") }
        guard let rawActs = o["activations"] as? [Any] else { throw bad("'activations' must be a list of numbers") }
        var activations: [Float] = []
        activations.reserveCapacity(rawActs.count)
        for a in rawActs {
            guard let n = a as? NSNumber, !isJSONBool(n), n.doubleValue.isFinite else {
                throw bad("'activations' must be a list of finite numbers, found \(a)")
            }
            activations.append(n.floatValue)
        }
        guard activations.count == tokens.count else {
            throw bad("\(tokens.count) tokens but \(activations.count) activations")
        }
        guard let peak = keys.rawInt("peak_index"), peak >= 0, peak < tokens.count else {
            throw bad("'peak_index' must index the tokens (0..<\(tokens.count)), found \(o["peak_index"] ?? "nothing")")
        }
        guard let peakActivation = try keys.double("peak_activation"), peakActivation.isFinite else {
            throw bad("'peak_activation' must be a finite number")
        }
        return FeatureContext(source: source, document: document, tokens: tokens, activations: activations,
                              peakIndex: peak, peakActivation: Float(peakActivation))
    }

    private static func parseHistogram(_ value: Any, path: String, at place: String) throws -> ActivationHistogram {
        func bad(_ reason: String) -> FeatureError { .badLabels(path: path, reason: "\(place): \(reason)") }
        guard let o = value as? [String: Any] else { throw bad("expected an object {\"upper\": …, \"counts\": […]}") }
        let keys = JSONKeys(o, path: path)
        guard let upper = try keys.double("upper"), upper.isFinite, upper >= 0, Float(upper).isFinite else {
            throw bad("'upper' must be a finite number ≥ 0")
        }
        guard let raw = o["counts"] as? [Any], !raw.isEmpty else { throw bad("'counts' must be a non-empty list of counts") }
        var counts: [Int] = []
        counts.reserveCapacity(raw.count)
        for c in raw {
            guard let n = c as? NSNumber, !isJSONBool(n), let i = ActivationHistogram.count(n.doubleValue) else {
                throw bad("'counts' must be whole numbers ≥ 0, found \(c)")
            }
            counts.append(i)
        }
        return ActivationHistogram(upper: Float(upper), counts: counts)
    }

    static func parseScan(_ value: Any, path: String) throws -> FeatureScanRecord {
        func bad(_ reason: String) -> FeatureError { .badLabels(path: path, reason: "scan: \(reason)") }
        guard let o = value as? [String: Any] else { throw bad("expected an object") }
        let keys = JSONKeys(o, path: path)
        func int(_ key: String) throws -> Int {
            guard let v = keys.rawInt(key), v >= 0 else { throw bad("'\(key)' must be a whole number ≥ 0") }
            return v
        }
        guard let corpora = o["corpora"] as? [String] else { throw bad("'corpora' must be a list of file names") }
        guard let split = try keys.string("split") else { throw bad("'split' must be a string") }
        guard let hook = try keys.string("hook") else { throw bad("'hook' must be a string") }
        let model = o["model"] as? [String: Any]
        let modelKeys = model.map { JSONKeys($0, path: path) }
        return FeatureScanRecord(corpora: corpora, split: split, tokens: try int("tokens"), window: try int("window"),
                                 hook: hook, modelName: try modelKeys?.string("name"),
                                 modelSHA256: try modelKeys?.string("gguf_sha256"), before: try int("before"),
                                 after: try int("after"), contextsPerLatent: try int("contexts_per_latent"))
    }

    /// The file's bytes: one feature per line (`id` first, then keys sorted, no spaces), activations
    /// in contexts to 3 significant digits, so files stay compact and diff cleanly.
    public func encoded() -> Data {
        var out = "{\"features\": [\n"
        var first = true
        forEach { l in
            var o: [(String, JSONText)] = [("id", .string(l.id))]
            if let v = l.contexts { o.append(("contexts", .array(v.map(Self.contextJSON)))) }
            if let v = l.description { o.append(("description", .string(v))) }
            if let v = l.frequency { o.append(("frequency", .number(v, digits: 4))) }
            if let v = l.histogram {
                o.append(("histogram", .object([("counts", .array(v.counts.map { .int($0) })),
                                                ("upper", .number(Double(v.upper), digits: 9))])))
            }
            if let v = l.maxActivation { o.append(("max_activation", .number(Double(v), digits: 9))) }
            if let v = l.name { o.append(("name", .string(v))) }
            if let v = l.topExamples { o.append(("top_examples", .array(v.map { .string($0) }))) }
            out += first ? "" : ",\n"
            first = false
            JSONText.object(o).write(to: &out)
        }
        out += first ? "]" : "\n]"
        if let s = scan {
            var model: [(String, JSONText)] = []
            if let v = s.modelSHA256 { model.append(("gguf_sha256", .string(v))) }
            if let v = s.modelName { model.append(("name", .string(v))) }
            let o: [(String, JSONText)] = [
                ("after", .int(s.after)), ("before", .int(s.before)), ("contexts_per_latent", .int(s.contextsPerLatent)),
                ("corpora", .array(s.corpora.map { .string($0) })), ("hook", .string(s.hook)), ("model", .object(model)),
                ("split", .string(s.split)), ("tokens", .int(s.tokens)), ("window", .int(s.window)),
            ]
            out += ",\n\"scan\": "
            JSONText.object(o).write(to: &out)
        }
        out += "}\n"
        return Data(out.utf8)
    }

    private static func contextJSON(_ c: FeatureContext) -> JSONText {
        .object([
            ("activations", .array(c.activations.map { .number(Double($0), digits: 3) })),
            ("document", .int(c.document)),
            ("peak_activation", .number(Double(c.peakActivation), digits: 3)),
            ("peak_index", .int(c.peakIndex)),
            ("source", .string(c.source)),
            ("tokens", .array(c.tokens.map { .string($0) })),
        ])
    }

    /// Writes the labels file atomically (a temporary file renamed over the old one).
    public func write(to path: String) throws {
        try encoded().write(to: URL(fileURLWithPath: path), options: .atomic)
    }
}

/// `value` rounded to `digits` significant digits, as the labels file stores it.
public func roundedToSignificantDigits(_ value: Float, _ digits: Int = 3) -> Float {
    guard value != 0, value.isFinite else { return value }
    return Float(JSONText.format(Double(value), digits: digits)) ?? value
}

/// `value` rounded to `digits` significant digits, as the labels file stores it.
public func roundedToSignificantDigits(_ value: Double, _ digits: Int) -> Double {
    guard value != 0, value.isFinite else { return value }
    return Double(JSONText.format(value, digits: digits)) ?? value
}

/// Just enough JSON writing for the labels file: keys in the order given, numbers to a chosen
/// number of significant digits (JSONSerialization can do neither).
enum JSONText {
    case string(String)
    case int(Int)
    case number(Double, digits: Int)
    case array([JSONText])
    case object([(String, JSONText)])

    func write(to out: inout String) {
        switch self {
        case .string(let s): Self.writeString(s, to: &out)
        case .int(let i): out += String(i)
        case .number(let v, let digits): out += Self.format(v, digits: digits)
        case .array(let items):
            out += "["
            for (n, item) in items.enumerated() {
                if n > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .object(let pairs):
            out += "{"
            for (n, (key, value)) in pairs.enumerated() {
                if n > 0 { out += "," }
                Self.writeString(key, to: &out)
                out += ":"
                value.write(to: &out)
            }
            out += "}"
        }
    }

    /// `%.Ng`, which is valid JSON for every finite number; non-finite values (never stored) as 0.
    static func format(_ v: Double, digits: Int) -> String {
        guard v.isFinite else { return "0" }
        if v == 0 { return "0" }
        return String(format: "%.\(digits)g", v)
    }

    static func writeString(_ s: String, to out: inout String) {
        out += "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    out += String(format: "\\u%04x", u.value)
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
    }
}
