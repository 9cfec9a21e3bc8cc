// Per-latent statistics over a stream of encoded windows: how often each latent fires, its largest
// activation, the histogram of all its firing activations, and its top activating contexts (the
// strongest position per window, kept in a bounded min-heap per latent), as SAE dashboards (e.g.
// SAELens/Neuronpedia) show them.

import ProbityLM

/// How much context `FeatureStatistics` keeps.
public struct FeatureStatisticsOptions: Sendable, Equatable {
    /// Contexts kept per latent.
    public var contextsPerLatent = 5
    /// Tokens kept before and after a context's peak.
    public var before = 8
    public var after = 4
    /// Latents active on more than this fraction of positions count as dense.
    public var denseFrequency = 0.1
    /// Equal-width bins of each latent's activation histogram, on [0, its max activation].
    public var histogramBins = ActivationHistogram.defaultBins

    public init(contextsPerLatent: Int = 5, before: Int = 8, after: Int = 4,
                histogramBins: Int = ActivationHistogram.defaultBins) {
        self.contextsPerLatent = contextsPerLatent
        self.before = before
        self.after = after
        self.histogramBins = histogramBins
    }
}

/// Running statistics of every latent of one SAE.
public struct FeatureStatistics: Sendable {
    public let dSAE: Int
    public let options: FeatureStatisticsOptions
    /// Positions added so far.
    public private(set) var positions = 0
    /// Per latent: positions where it was active (> 0).
    public private(set) var counts: [Int]
    /// Per latent: the largest activation seen (0 if never active).
    public private(set) var maxActivations: [Float]
    /// Per latent: every activation where it fired, in scan order. The histogram's bins end at the
    /// max activation, known only at the end, so the values are kept (4 bytes per firing position:
    /// 51 MB for 400,000 positions of a TopK SAE with k = 32) and counted once the scan is done.
    private var firing: [[Float]]
    private var heaps: [ContextHeap]
    private var sequence = 0
    // Scratch for one window, kept to avoid reallocating per window.
    private var windowMax: [Float]
    private var windowArg: [Int]

    public init(dSAE: Int, options: FeatureStatisticsOptions = FeatureStatisticsOptions()) {
        precondition(dSAE > 0 && options.contextsPerLatent >= 0 && options.before >= 0 && options.after >= 0
                     && options.histogramBins >= 1)
        self.dSAE = dSAE
        self.options = options
        counts = [Int](repeating: 0, count: dSAE)
        maxActivations = [Float](repeating: 0, count: dSAE)
        firing = [[Float]](repeating: [], count: dSAE)
        heaps = [ContextHeap](repeating: ContextHeap(), count: dSAE)
        windowMax = [Float](repeating: 0, count: dSAE)
        windowArg = [Int](repeating: 0, count: dSAE)
    }

    /// Adds one window's encoded positions. `encoding` holds the latents of the window positions
    /// `rows` (in order; special tokens are usually left out), `window` all of the window's tokens.
    /// A latent's candidate context from this window is its strongest position in it (the first
    /// on ties), so one long run of firing does not fill all of its slots.
    /// - Complexity: O(rows · d_sae), plus building a context for each latent whose top list it enters.
    public mutating func add(_ encoding: SAEEncoding, rows: [Int], window: [Int], source: String, document: Int,
                             tokenizer: Tokenizer) throws {
        precondition(encoding.count == rows.count && encoding.dSAE == dSAE, "encoding does not match the rows")
        let n = dSAE
        var touched: [Int] = []
        encoding.latents.withUnsafeBufferPointer { f in
            for slot in 0..<rows.count {
                let row = f.baseAddress! + slot * n
                for i in 0..<n where row[i] > 0 {
                    counts[i] += 1
                    firing[i].append(row[i])
                    if windowMax[i] == 0 { touched.append(i) }
                    if row[i] > windowMax[i] {
                        windowMax[i] = row[i]
                        windowArg[i] = slot
                    }
                }
            }
        }
        positions += rows.count
        guard !touched.isEmpty else { return }
        var slotOf = [Int](repeating: -1, count: window.count)
        for (slot, p) in rows.enumerated() where p >= 0 && p < window.count { slotOf[p] = slot }
        var pieces: [Int: String] = [:]
        for i in touched {
            let value = windowMax[i]
            windowMax[i] = 0
            if value > maxActivations[i] { maxActivations[i] = value }
            guard options.contextsPerLatent > 0, heaps[i].admits(value, capacity: options.contextsPerLatent) else { continue }
            let peak = rows[windowArg[i]]
            let lo = max(0, peak - options.before), hi = min(window.count - 1, peak + options.after)
            var tokens: [String] = []
            var acts: [Float] = []
            for p in lo...hi {
                if pieces[window[p]] == nil { pieces[window[p]] = try tokenizer.piece(window[p]) }
                tokens.append(pieces[window[p]] ?? "")
                let s = slotOf[p]
                acts.append(s >= 0 ? roundedToSignificantDigits(encoding.latents[s * n + i]) : 0)
            }
            let context = FeatureContext(source: source, document: document, tokens: tokens, activations: acts,
                                         peakIndex: peak - lo, peakActivation: roundedToSignificantDigits(value))
            heaps[i].insert(ContextHeap.Entry(value: value, sequence: sequence, context: context),
                            capacity: options.contextsPerLatent)
            sequence += 1
        }
    }

    /// Latent `i`'s firing frequency: active positions / positions.
    public func frequency(_ i: Int) -> Double { positions > 0 ? Double(counts[i]) / Double(positions) : 0 }

    /// Latent `i`'s top contexts, strongest first (earlier first on ties).
    public func contexts(_ i: Int) -> [FeatureContext] { heaps[i].sortedDescending.map(\.context) }

    /// Latent `i`'s firing activations counted in `options.histogramBins` bins on [0, its max
    /// activation] (edges as `ActivationHistogram` states them); nil for a latent never active.
    /// The counts add up to `counts[i]`.
    public func histogram(_ i: Int) -> ActivationHistogram? {
        guard counts[i] > 0 else { return nil }
        return ActivationHistogram.counting(firing[i], upper: maxActivations[i], bins: options.histogramBins)
    }

    /// Latents never active.
    public var deadLatents: Int { counts.filter { $0 == 0 }.count }

    /// Latents active on more than `options.denseFrequency` of positions.
    public var denseLatents: Int { (0..<dSAE).filter { frequency($0) > options.denseFrequency }.count }

    /// `existing` with every latent's statistics replaced by these (names, descriptions and other
    /// ids kept): frequency (to 4 significant digits, as the file keeps it), max activation (none
    /// for a latent never active), activation histogram (none for a latent never active) and top
    /// contexts.
    public func labels(updating existing: FeatureLabels, scan: FeatureScanRecord) -> FeatureLabels {
        var out = existing
        out.scan = scan
        for i in 0..<dSAE {
            var l = existing[latent: i] ?? FeatureLabel(id: String(i))
            l.frequency = roundedToSignificantDigits(frequency(i), 4)
            l.maxActivation = counts[i] > 0 ? maxActivations[i] : nil
            l.histogram = histogram(i)
            l.contexts = contexts(i)
            out.set(l)
        }
        return out
    }
}

/// A bounded min-heap of contexts by peak activation: the root is the weakest kept, so a stronger
/// candidate replaces it in O(log capacity). Later entries lose ties, so results do not depend on
/// how the heap happened to order equal values.
struct ContextHeap: Sendable {
    struct Entry: Sendable {
        var value: Float
        var sequence: Int
        var context: FeatureContext
    }

    private(set) var entries: [Entry] = []

    /// `a` ranks below `b`: weaker, or as strong and later.
    static func below(_ a: Entry, _ b: Entry) -> Bool {
        a.value < b.value || (a.value == b.value && a.sequence > b.sequence)
    }

    /// Whether a candidate of strength `value` (later than every entry) would be kept.
    func admits(_ value: Float, capacity: Int) -> Bool {
        entries.count < capacity || (entries.first.map { value > $0.value } ?? true)
    }

    mutating func insert(_ e: Entry, capacity: Int) {
        if entries.count < capacity {
            entries.append(e)
            var c = entries.count - 1
            while c > 0 {
                let p = (c - 1) / 2
                guard Self.below(entries[c], entries[p]) else { break }
                entries.swapAt(c, p)
                c = p
            }
        } else if let root = entries.first, Self.below(root, e) {
            entries[0] = e
            var p = 0
            while true {
                let l = 2 * p + 1, r = l + 1
                var m = p
                if l < entries.count && Self.below(entries[l], entries[m]) { m = l }
                if r < entries.count && Self.below(entries[r], entries[m]) { m = r }
                if m == p { break }
                entries.swapAt(p, m)
                p = m
            }
        }
    }

    var sortedDescending: [Entry] { entries.sorted { Self.below($1, $0) } }
}
