// llama.cpp's reference outputs for the default model (Tests/Fixtures/reference, see its README):
// the prompts, their tokens and logits files, and the distances the tests measure against them.
// Shared by the in-process model tests and the CLI tests, which run the model in the binary.

import Foundation
import ProbityFormats

public enum Reference {
    public static let referenceDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/reference")

    public struct Variant: Sendable {
        public var prompt: String
        public var variant: String
        /// The prompt's text, as evaluated (special tokens parsed).
        public var text: String
        public var tokens: [Int]
        public var top10: [Int]
        public var greedy: [Int]
        public var logitsFile: String
        public var f64File: String { logitsFile.replacingOccurrences(of: ".npy", with: "_f64ref.npy") }
    }

    /// Every prompt × variant in reference.json.
    public static func variants() throws -> [Variant] {
        let data = try Data(contentsOf: referenceDirectory.appendingPathComponent("reference.json"))
        guard let root = try JSONSerialization.jsonObject(with: data) as? [String: Any],
              let prompts = root["prompts"] as? [[String: Any]] else {
            throw FixtureError("reference.json: unexpected layout")
        }
        var out: [Variant] = []
        for p in prompts {
            guard let name = p["name"] as? String, let text = p["text"] as? String,
                  let variants = p["variants"] as? [String: Any] else {
                throw FixtureError("reference.json: prompt without name, text or variants")
            }
            for key in variants.keys.sorted() {
                guard let v = variants[key] as? [String: Any],
                      let tokens = v["tokens"] as? [Int], let top10 = v["top10_ids"] as? [Int],
                      let greedy = v["greedy32"] as? [Int], let file = v["logits_file"] as? String else {
                    throw FixtureError("reference.json: \(name)/\(key) incomplete")
                }
                out.append(Variant(prompt: name, variant: key, text: text, tokens: tokens, top10: top10,
                                   greedy: greedy, logitsFile: file))
            }
        }
        return out
    }

    /// A reference .npy vector as Float64.
    public static func vector(_ file: String) throws -> [Double] {
        let array = try NPY.read(path: referenceDirectory.appendingPathComponent(file).path)
        return array.values
    }
}

public struct FixtureError: Error, CustomStringConvertible {
    public var description: String
    public init(_ d: String) { description = d }
}

/// ‖a − b‖₂ / ‖b‖₂.
public func relativeL2(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "length \(a.count) vs \(b.count)")
    var num = 0.0, den = 0.0
    for i in a.indices {
        let d = Double(a[i]) - b[i]
        num += d * d
        den += b[i] * b[i]
    }
    return (num / den).squareRoot()
}

public func relativeL2(_ a: [Float], _ b: [Float]) -> Double { relativeL2(a, b.map(Double.init)) }

/// Index of the largest value (lowest index on ties).
public func argmax<T: Comparable>(_ v: some Collection<T>) -> Int {
    var best = 0, i = 0
    var bestValue: T? = nil
    for x in v {
        if bestValue == nil || x > bestValue! { bestValue = x; best = i }
        i += 1
    }
    return best
}
