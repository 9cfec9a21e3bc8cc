// The labels file read fast: a dictionary's labels hold every latent's top contexts (10 MB for the
// default 8192-latent pack), and reading them through Foundation took about a second (its dynamic
// objects) or 0.6 s (JSONDecoder), paid by every command that loads the pack, twice when rules are
// checked too. This path reads a feature straight from the validated bytes (`JSONCursor`) into
// typed values and applies exactly the careful reading's checks. Whenever it cannot (a value of an
// unexpected type, a key written with escapes, a failed check), the careful reading decides and
// explains: the fast path only ever returns what that one would.

import Foundation
import ProbityFormats

extension FeatureLabels {
    /// The labels of validated JSON `data`, or nil if the careful reader must decide.
    static func decodedFast(_ data: Data) -> FeatureLabels? {
        data.withUnsafeBytes { b -> FeatureLabels? in
            var labels: [FeatureLabel]?
            var scan: FeatureScanRecord?
            var c = JSONCursor(b)
            let ok = c.object { key, c in
                if JSONCursor.key(key, is: "features") {
                    var list: [FeatureLabel] = []
                    guard c.array({ c in
                        guard let label = readLabel(&c) else { return false }
                        list.append(label)
                        return true
                    }) else { return false }
                    labels = list
                    return true
                }
                if JSONCursor.key(key, is: "scan") {
                    if c.null() { return true }
                    let start = c.offset
                    guard c.skip() else { return false }
                    scan = fastScan(Data(b[start..<c.offset]))
                    return scan != nil
                }
                return c.skip()
            }
            guard ok, let labels else { return nil }
            return FeatureLabels(labels, scan: scan)
        }
    }

    /// The feature whose object starts at `range.lowerBound` of validated bytes, or nil if the
    /// careful reader must decide.
    static func fastLabel(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> FeatureLabel? {
        var c = JSONCursor(bytes, at: range.lowerBound)
        guard let label = readLabel(&c), c.offset == range.upperBound else { return nil }
        return label
    }

    /// `fastLabel` without the statistics: `histogram`, `contexts` and `top_examples` are skipped.
    static func fastHeadline(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> FeatureLabel? {
        var c = JSONCursor(bytes, at: range.lowerBound)
        guard let label = readLabel(&c, statistics: false), c.offset == range.upperBound else { return nil }
        return label
    }

    /// The `scan` record from its validated JSON, or nil if the careful reader must decide.
    static func fastScan(_ data: Data) -> FeatureScanRecord? {
        (try? JSONDecoder().decode(Scan.self, from: data))?.record
    }

    /// `JSONKeys.rawInt`'s rule: a number that is a whole number below 10¹⁵.
    private static func whole(_ d: Double?) -> Int? {
        guard let d, d.rounded() == d, abs(d) < 1e15 else { return nil }
        return Int(d)
    }

    /// A member that may be absent or null: nil for null, `read`'s value otherwise; false (in
    /// `ok`) when the value is of another type.
    private static func optional<T>(_ c: inout JSONCursor, _ read: (inout JSONCursor) -> T?) -> (ok: Bool, value: T?) {
        if c.null() { return (true, nil) }
        guard let value = read(&c) else { return (false, nil) }
        return (true, value)
    }

    /// One feature object: an id (a string, or a whole number), and the optional members the careful
    /// reader knows; other members are skipped, as the careful reader ignores them. Without
    /// `statistics`, `histogram`, `contexts` and `top_examples` are skipped too, unread.
    static func readLabel(_ c: inout JSONCursor, statistics: Bool = true) -> FeatureLabel? {
        var id: String?
        var name: String?, description: String?
        var max: Float?, frequency: Double?
        var histogram: ActivationHistogram?
        var contexts: [FeatureContext]?
        var topExamples: [String]?
        let ok = c.object { key, c in
            if JSONCursor.key(key, is: "id") {
                switch c.peekKind() {
                case .string: id = c.string()
                case .number: id = whole(c.number()).map(String.init)
                default: return false
                }
                return id != nil
            }
            if JSONCursor.key(key, is: "name") {
                let r = optional(&c) { $0.string() }
                name = r.value
                return r.ok
            }
            if JSONCursor.key(key, is: "description") {
                let r = optional(&c) { $0.string() }
                description = r.value
                return r.ok
            }
            if JSONCursor.key(key, is: "max_activation") {
                let r = optional(&c) { $0.number() }
                max = r.value.map(Float.init)
                if let max, !max.isFinite { return false }
                return r.ok
            }
            if JSONCursor.key(key, is: "frequency") {
                let r = optional(&c) { $0.number() }
                frequency = r.value
                if let f = frequency, !(f >= 0 && f <= 1) { return false }
                return r.ok
            }
            if !statistics { return c.skip() }
            if JSONCursor.key(key, is: "histogram") {
                let r = optional(&c) { readHistogram(&$0) }
                histogram = r.value
                return r.ok
            }
            if JSONCursor.key(key, is: "contexts") {
                let r = optional(&c) { c -> [FeatureContext]? in
                    var out: [FeatureContext] = []
                    let ok = c.array { c in
                        guard let context = readContext(&c) else { return false }
                        out.append(context)
                        return true
                    }
                    return ok ? out : nil
                }
                contexts = r.value
                return r.ok
            }
            if JSONCursor.key(key, is: "top_examples") {
                let r = optional(&c) { $0.strings() }
                topExamples = r.value
                return r.ok
            }
            return c.skip()
        }
        guard ok, let id else { return nil }
        return FeatureLabel(id: id, name: name, description: description, maxActivation: max, frequency: frequency,
                            histogram: histogram, contexts: contexts, topExamples: topExamples)
    }

    /// `{"upper": max, "counts": [...]}`: bins on [0, upper].
    private static func readHistogram(_ c: inout JSONCursor) -> ActivationHistogram? {
        var upper: Double?
        var counts: [Double]?
        let ok = c.object { key, c in
            if JSONCursor.key(key, is: "upper") {
                upper = c.number()
                return upper != nil
            }
            if JSONCursor.key(key, is: "counts") {
                counts = c.numbers()
                return counts != nil
            }
            return c.skip()
        }
        guard ok, let upper, let counts, upper.isFinite, upper >= 0, Float(upper).isFinite, !counts.isEmpty else { return nil }
        var out: [Int] = []
        out.reserveCapacity(counts.count)
        for count in counts {
            guard let n = ActivationHistogram.count(count) else { return nil }
            out.append(n)
        }
        return ActivationHistogram(upper: Float(upper), counts: out)
    }

    /// One top context: every member required.
    private static func readContext(_ c: inout JSONCursor) -> FeatureContext? {
        var source: String?
        var document: Double?, peakIndex: Double?, peakActivation: Double?
        var tokens: [String]?
        var activations: [Double]?
        let ok = c.object { key, c in
            if JSONCursor.key(key, is: "source") {
                source = c.string()
                return source != nil
            }
            if JSONCursor.key(key, is: "document") {
                document = c.number()
                return document != nil
            }
            if JSONCursor.key(key, is: "tokens") {
                tokens = c.strings()
                return tokens != nil
            }
            if JSONCursor.key(key, is: "activations") {
                activations = c.numbers()
                return activations != nil
            }
            if JSONCursor.key(key, is: "peak_index") {
                peakIndex = c.number()
                return peakIndex != nil
            }
            if JSONCursor.key(key, is: "peak_activation") {
                peakActivation = c.number()
                return peakActivation != nil
            }
            return c.skip()
        }
        guard ok, let source, let tokens, let activations, let peakActivation,
              let document = whole(document), document >= 0 else { return nil }
        guard activations.allSatisfy(\.isFinite), activations.count == tokens.count else { return nil }
        guard let peak = whole(peakIndex), peak >= 0, peak < tokens.count, peakActivation.isFinite else { return nil }
        return FeatureContext(source: source, document: document, tokens: tokens, activations: activations.map(Float.init),
                              peakIndex: peak, peakActivation: Float(peakActivation))
    }

    private struct Scan: Decodable {
        struct Model: Decodable {
            var name: String?
            var gguf_sha256: String?
        }
        var corpora: [String]
        var split: String
        var hook: String
        var model: Model?
        var tokens: Double
        var window: Double
        var before: Double
        var after: Double
        var contexts_per_latent: Double

        var record: FeatureScanRecord? {
            let counts = [tokens, window, before, after, contexts_per_latent].map { whole($0) }
            guard counts.allSatisfy({ ($0 ?? -1) >= 0 }) else { return nil }
            return FeatureScanRecord(corpora: corpora, split: split, tokens: counts[0] ?? 0, window: counts[1] ?? 0,
                                     hook: hook, modelName: model?.name, modelSHA256: model?.gguf_sha256,
                                     before: counts[2] ?? 0, after: counts[3] ?? 0, contextsPerLatent: counts[4] ?? 0)
        }
    }
}
