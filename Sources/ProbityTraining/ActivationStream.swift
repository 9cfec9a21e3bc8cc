// Activations for SAE training, streamed from corpora through the model: documents rendered with
// the chat template, tokenized, cut into context windows, run with a hook that copies the rows at
// one hook point (special-token positions, and positions whose token prefix the run has already
// seen, skipped), gathered into a buffer and shuffled.

import Foundation
import ProbityLM
import ProbityTensor

/// Turns corpus documents into token windows: chat documents rendered with `chatFormat`, each
/// document tokenized once (BOS as the tokenizer adds it) and cut into windows of `context` tokens.
public struct WindowSource {
    public let corpora: [Corpus]
    public let split: CorpusSplit
    public let tokenizer: Tokenizer
    public let chatFormat: ChatFormat?
    public let context: Int

    public init(corpora: [Corpus], split: CorpusSplit, tokenizer: Tokenizer, chatFormat: ChatFormat?, context: Int) {
        self.corpora = corpora
        self.split = split
        self.tokenizer = tokenizer
        self.chatFormat = chatFormat
        self.context = context
    }

    /// The document's tokens.
    public func tokens(_ doc: CorpusDocument) throws -> [Int] {
        switch doc.content {
        case .text(let s):
            return tokenizer.encode(s, addSpecial: true, parseSpecial: false)
        case .chat(let messages):
            // Never rendered some other way: the dictionary would learn text the model is not run on.
            guard let chatFormat else { throw TrainingError.conversationNeedsChatFormat(document: doc.id) }
            let text: RenderedChat
            do { text = try chatFormat.renderChat(messages, addGenerationPrompt: false) } catch GenerationError.rolesMustAlternate {
                // Formats such as Gemma's take strictly alternating turns, which corpus
                // conversations do not always keep (ShareGPT's open with the assistant or repeat a role).
                let turns = Self.alternating(messages)
                // Nothing the user said: no turns to render (ShareGPT holds a few such records).
                guard turns.contains(where: { $0.role == .user }) else { return [] }
                text = try chatFormat.renderChat(turns, addGenerationPrompt: false)
            }
            return tokenizer.encode(text, addSpecial: true)
        }
    }

    /// `messages` as alternating turns: a leading system message kept, the assistant's turns
    /// before the first user turn dropped, and consecutive turns of one role joined by a blank line.
    static func alternating(_ messages: [ChatMessage]) -> [ChatMessage] {
        var out: [ChatMessage] = []
        for m in messages {
            if m.role == .system, out.isEmpty { out.append(m); continue }
            if m.role == .assistant, !out.contains(where: { $0.role == .user }) { continue }
            if let last = out.last, last.role == m.role, m.role != .system {
                out[out.count - 1].content += "\n\n" + m.content
            } else {
                out.append(m)
            }
        }
        return out
    }

    /// The document's windows of at most `context` tokens. When the tokenizer starts a text with
    /// BOS, every window starts with BOS: a window's first position would otherwise take the
    /// attention-sink role with an outsized activation norm. Windows of fewer than two tokens are dropped.
    public func windows(_ doc: CorpusDocument) throws -> [[Int]] {
        var toks = try tokens(doc)
        var prefix: [Int] = []
        if let bos = tokenizer.bosID, toks.first == bos {
            prefix = [bos]
            toks.removeFirst()
        }
        let step = max(context - prefix.count, 1)
        return stride(from: 0, to: toks.count, by: step).compactMap { start in
            let w = prefix + toks[start..<min(start + step, toks.count)]
            return w.count < 2 ? nil : w
        }
    }

    /// Calls `body` with each document's windows in order, after skipping the first `skip`
    /// documents of the split (skipped ones are parsed, not tokenized), until `body` returns false.
    /// Several corpora interleave one document each in turn (a corpus that runs out drops out), so
    /// every run of any length sees all of them; the order is fixed, so `skip` resumes exactly.
    public func forEachDocument(skip: Int = 0, _ body: ([[Int]]) throws -> Bool) throws {
        var index = 0
        func visit(_ doc: CorpusDocument) throws -> Bool {
            index += 1
            if index <= skip { return true }
            return try body(try windows(doc))
        }
        if corpora.count == 1 {
            try corpora[0].forEachDocument(split: split) { try visit($0) }
            return
        }
        var lists: [[CorpusDocument]] = []
        for corpus in corpora {
            var docs: [CorpusDocument] = []
            try corpus.forEachDocument(split: split) { docs.append($0); return true }
            lists.append(docs)
        }
        let longest = lists.map(\.count).max() ?? 0
        for i in 0..<longest {
            for list in lists where i < list.count {
                if !(try visit(list[i])) { return }
            }
        }
    }
}

/// The token prefixes a training run has already collected. The model is causal, so a position's
/// activation is a function of its prefix (its window up to and including it): a prefix seen before
/// gives the very activation collected then. Every chat document without a system message that
/// SmolLM2's template renders opens with the same default system turn, so without this the SAE
/// would train on those ~20 positions once per document and memorise them.
///
/// Prefixes are kept as 64-bit rolling hashes: about 16 bytes per position collected, and a chance
/// below 1e-5 that a new prefix is taken for a seen one in a run of 10M positions.
public struct SeenPrefixes: Sendable {
    private var hashes: Set<UInt64> = []
    /// Positions `novel` found already seen.
    public private(set) var repeated = 0

    public init() {}

    /// For each position of `window`, whether its prefix is new to the run; records them all.
    /// - Complexity: O(window.count).
    public mutating func novel(_ window: [Int]) -> [Bool] {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15
        return window.map { token in
            h = Self.mix(h ^ UInt64(bitPattern: Int64(token)))
            let new = hashes.insert(h).inserted
            if !new { repeated += 1 }
            return new
        }
    }

    /// SplitMix64's finaliser: every bit of the running hash depends on every token so far.
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Runs windows through the model and returns the rows at `point` for non-special tokens.
public final class ActivationCollector {
    public let model: any LanguageModel
    public let tokenizer: Tokenizer
    public let point: HookPoint
    let session: InferenceSession
    public var width: Int { model.info.width }

    public init(model: any LanguageModel, tokenizer: Tokenizer, point: HookPoint, context: Int) throws {
        try model.info.validate(point)
        self.model = model
        self.tokenizer = tokenizer
        self.point = point
        self.session = try model.makeSession(capacity: context)
    }

    /// Appends the window's activations at non-special positions to `rows` (only those where `keep`
    /// is true, when given: one flag per position); returns how many.
    @discardableResult
    public func collect(_ window: [Int], into rows: inout [Float], keep: [Bool]? = nil) throws -> Int {
        if let keep, !keep.contains(true) { return 0 }
        let hooks = HookSet()
        var captured: [Float] = []
        let width = self.width
        let tokenizer = self.tokenizer
        var count = 0
        hooks.attach(at: point) { acts in
            for r in 0..<acts.count {
                let tok = acts.tokens[acts.tokens.startIndex + r]
                if tokenizer.isSpecial(tok) { continue }
                if let keep {
                    let p = acts.positions.lowerBound + r
                    guard p < keep.count, keep[p] else { continue }
                }
                captured.append(contentsOf: UnsafeBufferPointer(start: acts.values + r * width, count: width))
                count += 1
            }
        }
        session.reset()
        try session.forward(window, origins: nil, hooks: hooks, through: point)
        rows.append(contentsOf: captured)
        return count
    }
}

/// Training batches: whole documents gathered into a buffer of at least `bufferRows` rows,
/// shuffled with a generator seeded by (seed, buffer number), served as whole batches; the few rows
/// left over are dropped. A position whose token prefix the run has already collected is skipped
/// (`SeenPrefixes`), so a shared opening (BOS, chat template, default system prompt) counts once.
/// A run can stop and resume at any buffer boundary knowing only how many documents and buffers
/// came before: resuming re-tokenizes the documents before it to know their prefixes.
public final class ShuffledBatches {
    public let source: WindowSource
    public let collector: ActivationCollector
    public let batchSize: Int
    public let bufferRows: Int
    public let seed: UInt64
    /// Documents consumed by completed buffers.
    public private(set) var documentsConsumed: Int
    /// Buffers filled so far.
    public private(set) var buffersFilled: Int
    /// Seconds spent running the model and rows collected, for throughput.
    public private(set) var collectSeconds = 0.0
    public private(set) var collectedRows = 0
    /// The prefixes collected so far (resumed runs include those of the documents before them).
    public private(set) var seen = SeenPrefixes()

    public init(source: WindowSource, collector: ActivationCollector, batchSize: Int, bufferRows: Int, seed: UInt64,
                documentsConsumed: Int = 0, buffersFilled: Int = 0) {
        self.source = source
        self.collector = collector
        self.batchSize = batchSize
        self.bufferRows = max(bufferRows, batchSize)
        self.seed = seed
        self.documentsConsumed = documentsConsumed
        self.buffersFilled = buffersFilled
    }

    /// Streams buffers to `body` (rows: a multiple of batchSize rows × width, shuffled) until it
    /// returns false or the corpora run out. When `body` runs, `documentsConsumed` and
    /// `buffersFilled` already count its buffer. The last, partial buffer is served if it holds
    /// at least one batch.
    public func run(_ body: ([Float]) throws -> Bool) throws {
        let width = collector.width
        var rows: [Float] = []
        var count = 0, docs = 0
        var lap = Date()
        var stopped = false
        if documentsConsumed > 0 {
            var replayed = 0
            try source.forEachDocument { windows in
                for w in windows { _ = seen.novel(w) }
                replayed += 1
                return replayed < documentsConsumed
            }
        }
        func flush() throws -> Bool {
            collectSeconds += Date().timeIntervalSince(lap)
            collectedRows += count
            let batches = count / batchSize
            guard batches > 0 else { return true }
            documentsConsumed += docs
            var rng = SplitMix64(seed: seed ^ (0x5851_F42D_4C95_7F2D &* UInt64(buffersFilled + 1)))
            buffersFilled += 1
            shuffleRows(&rows, count: count, width: width, rng: &rng)
            rows.removeLast((count - batches * batchSize) * width)
            let more = try body(rows)
            rows.removeAll(keepingCapacity: true)
            count = 0
            docs = 0
            lap = Date()
            return more
        }
        try source.forEachDocument(skip: documentsConsumed) { windows in
            for w in windows { count += try collector.collect(w, into: &rows, keep: seen.novel(w)) }
            docs += 1
            if count >= bufferRows {
                if !(try flush()) { stopped = true; return false }
            }
            return true
        }
        if !stopped { _ = try flush() }
    }
}

/// Fisher-Yates over `count` rows of `width` floats.
func shuffleRows(_ rows: inout [Float], count: Int, width: Int, rng: inout SplitMix64) {
    var tmp = [Float](repeating: 0, count: width)
    rows.withUnsafeMutableBufferPointer { p in
        guard let base = p.baseAddress else { return }
        for i in stride(from: count - 1, to: 0, by: -1) {
            let j = rng.next(below: i + 1)
            if i == j { continue }
            let a = base + i * width, b = base + j * width
            for t in 0..<width { tmp[t] = a[t] }
            for t in 0..<width { a[t] = b[t] }
            for t in 0..<width { b[t] = tmp[t] }
        }
    }
}
