// `probity diff`: the same texts through the base model and the model with LoRA adapters, and
// each pack's features compared position by position (docs/diff.md). Corpora are read as
// `features stats` reads them (Corpus, WindowSource); chat data (`{"messages", "response"}` lines)
// as `eval` renders it, the response teacher-forced after the conversation (Evaluation.tokens).
// The statistics and the ranking are FeatureDiffStatistics'.

import Foundation
import ProbityFeatures
import ProbityFormats
import ProbityLM
import ProbityTraining

/// What a diff runs.
public struct ModelDiffRequest: Sendable {
    /// The base model: `default` or a GGUF path.
    public var model: String
    /// The adapters the adapted model adds to it.
    public var adapters: [AdapterRequest]
    public var packs: [String]
    public var inputs: [String]
    /// The most positions (non-special tokens) to compare; nil: every position of the inputs.
    public var tokens: Int?
    /// Tokens per window for corpus documents (chat items run whole).
    public var window = 256
    /// Rows kept per pack.
    public var top = 20
    public var rankBy = FeatureDiffRanking.score
    /// Contexts kept per feature and direction of change, and tokens around each peak.
    public var contexts = FeatureStatisticsOptions(contextsPerLatent: 3, before: 8, after: 4)
    /// A chat format name, or `auto` (the model's template).
    public var chatFormat = "auto"
    public var threads: Int?
    public var allowModelMismatch = false

    public init(model: String, adapters: [AdapterRequest], packs: [String], inputs: [String]) {
        self.model = model
        self.adapters = adapters
        self.packs = packs
        self.inputs = inputs
    }

    /// Checks what needs neither the model nor the files.
    public func validate() throws {
        guard !adapters.isEmpty else { throw DiffError.argument("--lora: give the adapter to diff against the base (FILE.gguf[:SCALE])") }
        guard !packs.isEmpty else { throw DiffError.argument("--pack: give at least one feature pack") }
        guard !inputs.isEmpty else { throw DiffError.argument("--corpus: give at least one corpus file") }
        if let tokens, tokens < 1 { throw DiffError.argument("--tokens: expected a positive number, found \(tokens)") }
        guard window >= 2 else { throw DiffError.argument("--window: expected at least 2 tokens, found \(window)") }
        guard top >= 1 else { throw DiffError.argument("--top: expected at least 1, found \(top)") }
        guard (0...100).contains(contexts.contextsPerLatent) else {
            throw DiffError.argument("--contexts: expected 0 to 100, found \(contexts.contextsPerLatent)")
        }
    }
}

/// A diff's bad input, in its own words.
public enum DiffError: Error, CustomStringConvertible, Equatable {
    case argument(String)
    case noPositions(inputs: [String])

    public var description: String {
        switch self {
        case .argument(let text): return text
        case .noPositions(let inputs):
            return "\(inputs.joined(separator: ", ")): no tokens to compare (the inputs hold no non-special tokens)"
        }
    }
}

/// A disagreement inside the diff that no input can cause (exit 3).
struct DiffInternalError: Error, CustomStringConvertible {
    var detail: String
    var description: String { "diff: \(detail)" }
}

/// Where a diff stands, for a progress line.
public struct ModelDiffProgress: Sendable {
    public var positions: Int
    public var seconds: Double
}

/// One input file: a corpus `features stats` reads, or chat items.
enum DiffInput {
    case corpus(Corpus)
    case chat(path: String, items: [EvalItem])

    /// `.jsonl` files whose first record has `messages` are chat items; everything else a corpus.
    static func open(_ path: String) throws -> DiffInput {
        let corpus = try Corpus(path: path)
        guard corpus.format == .jsonl else { return .corpus(corpus) }
        guard let file = try FileBytes.open(path, what: "corpus", limit: FileSizeLimits.corpus), file.isUTF8 else {
            throw AuditError.cannotRead(path: path, reason: "not UTF-8 text")
        }
        if let first = firstLine(of: file), let value = try? JSONDecoder().decode(JSONValue.self, from: Data(first.utf8)),
           case .object(let o) = value, o["messages"] != nil {
            return .chat(path: path, items: try EvalItem.loadConversations(path: path))
        }
        return .corpus(corpus)
    }

    /// The first line of a mapped UTF-8 text that is not all whitespace, as `StrictJSON.lines`
    /// cuts lines ("\n" or "\r\n"), decoding one line at a time.
    static func firstLine(of file: FileBytes) -> String? {
        var start = 0
        while start < file.count {
            let end = file.withUnsafeBytes { b in (start..<b.count).first { b[$0] == UInt8(ascii: "\n") } ?? b.count }
            var line = String(decoding: file.data(start..<end), as: UTF8.self)
            if line.hasSuffix("\r") { line.removeLast() }
            if !line.allSatisfy(\.isWhitespace) { return line }
            start = end + 1
        }
        return nil
    }

    var path: String {
        switch self {
        case .corpus(let c): return c.path
        case .chat(let path, _): return path
        }
    }

    var format: String {
        switch self {
        case .corpus(let c): return c.format.rawValue
        case .chat: return "chat"
        }
    }
}

public enum ModelDiff {
    /// Loads both models and the packs, runs every input through both and returns the report.
    public static func run(_ request: ModelDiffRequest, version: String,
                           progress: (ModelDiffProgress) -> Void = { _ in }) throws -> DiffReport {
        try request.validate()
        let inputs = try request.inputs.map(DiffInput.open)
        let packs = try request.packs.map { try FeaturePack.load(path: $0) }
        let base = try LoadedModel.load(request.model, threads: request.threads)
        let adapted = try LoadedModel.load(request.model, threads: request.threads, adapters: request.adapters)
        let modelSHA = try SHA256.hex(file: base.path)
        let modelName = try base.file.optionalString("general.name")
        for pack in packs {
            _ = try pack.checkCompatibility(model: base.model.info, modelPath: base.path, modelName: modelName,
                                            modelSHA256: modelSHA, allowModelMismatch: request.allowModelMismatch)
        }
        let format = try AuditRunner.chatFormat(request.chatFormat, of: base)
        var run = try DiffRun(packs: packs, base: base, adapted: adapted, options: request.contexts)
        let start = Date()
        var lastReport = start
        var inputRecords: [DiffReport.Input] = []
        for input in inputs {
            let before = run.positions
            let source = URL(fileURLWithPath: input.path).lastPathComponent
            var documents = 0
            func add(_ tokens: [Int], document: Int) throws -> Bool {
                let remaining = request.tokens.map { $0 - run.positions } ?? Int.max
                guard remaining > 0 else { return false }
                try run.add(tokens, limit: remaining, source: source, document: document)
                if Date().timeIntervalSince(lastReport) >= 10 {
                    lastReport = Date()
                    progress(ModelDiffProgress(positions: run.positions, seconds: lastReport.timeIntervalSince(start)))
                }
                return request.tokens.map { run.positions < $0 } ?? true
            }
            switch input {
            case .corpus(let corpus):
                let windows = WindowSource(corpora: [corpus], split: .all, tokenizer: base.tokenizer, chatFormat: format,
                                           context: request.window)
                try corpus.forEachDocument(split: .all) { doc in
                    let index = documents
                    documents += 1
                    for window in try windows.windows(doc) {
                        if !(try add(window, document: index)) { return false }
                    }
                    return true
                }
            case .chat(_, let items):
                for (n, item) in items.enumerated() {
                    let (prompt, response) = try Evaluation.tokens(of: item, loaded: base, format: format)
                    let tokens = prompt + response
                    guard tokens.count <= base.model.info.contextLength else {
                        throw AuditError.data(path: item.file, line: item.line,
                                              reason: "item '\(item.id)' is \(tokens.count) tokens, longer than the model's context (\(base.model.info.contextLength))")
                    }
                    documents += 1
                    if !(try add(tokens, document: n)) { break }
                }
            }
            inputRecords.append(DiffReport.Input(path: input.path, sha256: try SHA256.hex(file: input.path), format: input.format,
                                                 documents: documents, positions: run.positions - before))
            if let limit = request.tokens, run.positions >= limit { break }
        }
        guard run.positions > 0 else { throw DiffError.noPositions(inputs: request.inputs) }
        let packDiffs = zip(packs, run.statistics).map { pack, stats in
            DiffReport.PackDiff(pack: pack, statistics: stats, rankBy: request.rankBy, top: request.top)
        }
        return DiffReport(
            schemaVersion: DiffReport.schemaVersion, probityVersion: version,
            base: try AuditReport.Model(base, loadedFrom: request.model),
            adapted: try AuditReport.Model(adapted, loadedFrom: request.model),
            inputs: inputRecords, positions: run.positions, window: request.window, chatFormat: request.chatFormat,
            rankedBy: request.rankBy.rawValue, packs: packDiffs)
    }
}

/// The running comparison: both models, the hook points the packs read, a statistics per pack.
struct DiffRun {
    let packs: [FeaturePack]
    let base: LoadedModel
    let adapted: LoadedModel
    /// Every point the packs read, and the last of them in the forward pass.
    let points: [HookPoint]
    let last: HookPoint
    private(set) var statistics: [FeatureDiffStatistics]

    var positions: Int { statistics.first?.positions ?? 0 }

    init(packs: [FeaturePack], base: LoadedModel, adapted: LoadedModel, options: FeatureStatisticsOptions) throws {
        self.packs = packs
        self.base = base
        self.adapted = adapted
        var points: [HookPoint] = []
        for p in packs.flatMap(FeatureColumns.points) where !points.contains(p) { points.append(p) }
        let order = HookPoint.all(blocks: base.model.info.blockCount)
        for p in points { try base.model.info.validate(p) }
        guard let last = points.max(by: { (order.firstIndex(of: $0) ?? 0) < (order.firstIndex(of: $1) ?? 0) }) else {
            throw DiffError.argument("--pack: the packs read no hook point")
        }
        self.points = points
        self.last = last
        statistics = try packs.map { pack in
            let n = FeatureColumns.count(pack)
            guard n > 0 else { throw DiffError.argument("--pack: \(pack.path): the pack holds no features") }
            return FeatureDiffStatistics(count: n, options: options)
        }
    }

    /// Runs `window` through both models and adds its first `limit` non-special positions (the
    /// window cut after the last of them).
    mutating func add(_ window: [Int], limit: Int, source: String, document: Int) throws {
        let tokenizer = base.tokenizer
        var window = window
        var rows = window.indices.filter { !tokenizer.isSpecial(window[$0]) }
        if rows.count > limit {
            rows.removeLast(rows.count - limit)
            window.removeLast(window.count - 1 - (rows.last ?? 0))
        }
        guard !rows.isEmpty else { return }
        let width = base.model.info.width
        let b = try activations(of: base, window, rows: rows)
        let a = try activations(of: adapted, window, rows: rows)
        for (k, pack) in packs.enumerated() {
            let bv = FeatureColumns.values(pack, count: rows.count, width: width) { b[$0] ?? [] }
            let av = FeatureColumns.values(pack, count: rows.count, width: width) { a[$0] ?? [] }
            try statistics[k].add(base: bv, adapted: av, rows: rows, window: window, source: source, document: document,
                                  tokenizer: tokenizer)
        }
    }

    /// The activations at every point of `rows` (window positions), rows in order.
    private func activations(of loaded: LoadedModel, _ window: [Int], rows: [Int]) throws -> [HookPoint: [Float]] {
        let width = loaded.model.info.width
        let keep = Set(rows)
        var captured: [HookPoint: [Float]] = [:]
        let hooks = HookSet()
        for point in points {
            captured[point] = []
            captured[point]?.reserveCapacity(rows.count * width)
            hooks.attach(at: point) { acts in
                for r in 0..<acts.count where keep.contains(acts.positions.lowerBound + r) {
                    captured[point]?.append(contentsOf: UnsafeBufferPointer(start: acts.values + r * width, count: width))
                }
            }
        }
        let session = try loaded.model.makeSession(capacity: window.count)
        try session.forward(window, origins: nil, hooks: hooks, through: last)
        for point in points where captured[point]?.count != rows.count * width {
            throw DiffInternalError(detail: "\(point.name) gave \((captured[point]?.count ?? 0) / width) rows, expected \(rows.count)")
        }
        return captured
    }
}
