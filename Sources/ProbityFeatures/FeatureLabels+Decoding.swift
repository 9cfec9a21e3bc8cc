// The labels file read fast: a dictionary's labels hold every latent's top contexts (10 MB for the
// default 8192-latent pack), and reading them through JSONSerialization's dynamic objects took about
// a second, paid by every command that loads the pack. This path decodes a feature (or the whole
// file) into typed values and applies exactly the careful reading's checks. Whenever it cannot (a
// value of an unexpected type, a failed check), the careful reading decides and explains: the fast
// path only ever returns what that one would.

import Foundation
import ProbityFormats

extension FeatureLabels {
    /// The labels of validated JSON `data`, or nil if the careful reader must decide.
    static func decodedFast(_ data: Data) -> FeatureLabels? {
        guard let file = try? JSONDecoder().decode(FileShape.self, from: data) else { return nil }
        var labels: [FeatureLabel] = []
        labels.reserveCapacity(file.features.count)
        for entry in file.features {
            guard let label = entry.label else { return nil }
            labels.append(label)
        }
        var scan: FeatureScanRecord?
        if let s = file.scan {
            guard let record = s.record else { return nil }
            scan = record
        }
        return FeatureLabels(labels, scan: scan)
    }

    /// One feature's label from its validated JSON object, or nil if the careful reader must decide.
    static func fastLabel(_ data: Data, decoder: JSONDecoder = JSONDecoder()) -> FeatureLabel? {
        (try? decoder.decode(Entry.self, from: data))?.label
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

    private struct FileShape: Decodable {
        var features: [Entry]
        var scan: Scan?
    }

    /// An id: a string, or a whole number.
    private enum ID: Decodable {
        case text(String)
        case number(Double)

        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .text(s) } else { self = .number(try c.decode(Double.self)) }
        }

        var string: String? {
            switch self {
            case .text(let s): return s
            case .number(let d): return whole(d).map(String.init)
            }
        }
    }

    private struct Entry: Decodable {
        var id: ID
        var name: String?
        var description: String?
        var max_activation: Double?
        var frequency: Double?
        var histogram: Histogram?
        var contexts: [Context]?
        var top_examples: [String]?

        var label: FeatureLabel? {
            guard let id = id.string else { return nil }
            let max = max_activation.map(Float.init)
            if let max, !max.isFinite { return nil }
            if let f = frequency, !(f >= 0 && f <= 1) { return nil }
            var counted: ActivationHistogram?
            if let histogram {
                guard let h = histogram.histogram else { return nil }
                counted = h
            }
            var parsed: [FeatureContext]?
            if let contexts {
                var out: [FeatureContext] = []
                out.reserveCapacity(contexts.count)
                for c in contexts {
                    guard let context = c.context else { return nil }
                    out.append(context)
                }
                parsed = out
            }
            return FeatureLabel(id: id, name: name, description: description, maxActivation: max, frequency: frequency,
                                histogram: counted, contexts: parsed, topExamples: top_examples)
        }
    }

    /// `{"upper": max, "counts": [...]}`: bins on [0, upper].
    private struct Histogram: Decodable {
        var upper: Double
        var counts: [Double]

        enum CodingKeys: String, CodingKey {
            case upper
            case counts
        }

        var histogram: ActivationHistogram? {
            guard upper.isFinite, upper >= 0, Float(upper).isFinite, !counts.isEmpty else { return nil }
            var out: [Int] = []
            out.reserveCapacity(counts.count)
            for c in counts {
                guard let n = ActivationHistogram.count(c) else { return nil }
                out.append(n)
            }
            return ActivationHistogram(upper: Float(upper), counts: out)
        }
    }

    private struct Context: Decodable {
        var source: String
        var document: Double
        var tokens: [String]
        var activations: [Double]
        var peak_index: Double
        var peak_activation: Double

        var context: FeatureContext? {
            guard let document = whole(document), document >= 0 else { return nil }
            guard activations.allSatisfy(\.isFinite), activations.count == tokens.count else { return nil }
            guard let peak = whole(peak_index), peak >= 0, peak < tokens.count, peak_activation.isFinite else { return nil }
            return FeatureContext(source: source, document: document, tokens: tokens, activations: activations.map(Float.init),
                                  peakIndex: peak, peakActivation: Float(peak_activation))
        }
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
