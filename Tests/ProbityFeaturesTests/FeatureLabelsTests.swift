// The labels file with statistics: old files still load, the extended file round-trips, malformed
// statistics are specific errors, activation histograms count exactly in their stated bins, and the
// top-context heap keeps the strongest (earliest on ties).

import Foundation
import Testing
@testable import ProbityFeatures

@Suite struct FeatureLabelsTests {
    func write(_ text: String) throws -> String { try writeLabelsFile(text) }

    @Test func oldLabelsFilesStillLoad() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        let fixture = try FeatureLabels.load(path: root.appendingPathComponent("Fixtures/rules/packs/smollm2-l15/labels.json").path)
        #expect(fixture[latent: 1234]?.name == "flattery" && fixture[latent: 1234]?.maxActivation == 6.5)
        #expect(fixture[latent: 1234]?.frequency == nil && fixture[latent: 1234]?.contexts == nil)
        #expect(fixture.scan == nil && !fixture.hasContexts)
        let old = try FeatureLabels.load(path: try write(#"{"features": [{"id": 3, "name": "a", "top_examples": ["x y"]}]}"#))
        #expect(old[latent: 3] == FeatureLabel(id: "3", name: "a", topExamples: ["x y"]))
    }

    @Test func extendedLabelsRoundTrip() throws {
        let context = FeatureContext(source: "c \"q\".txt", document: 12, tokens: ["<|im_start|>", "\n", " Paris", "\t", "é"],
                                     activations: [0, 0, 4.21, 0.000123, 1.5], peakIndex: 2, peakActivation: 4.21)
        let scan = FeatureScanRecord(corpora: ["a.json", "b.txt"], split: "train", tokens: 1000, window: 256,
                                     hook: "blocks.15.hook_resid_post", modelName: "SmolLM2", modelSHA256: nil,
                                     before: 8, after: 4, contextsPerLatent: 5)
        let labels = FeatureLabels([
            FeatureLabel(id: "2", name: "paris", description: "the city", maxActivation: 4.2123456, frequency: 0.0123,
                         histogram: ActivationHistogram(upper: 4.2123456, counts: [7, 0, 3, 1]), contexts: [context]),
            FeatureLabel(id: "10", frequency: 0, contexts: []),
            FeatureLabel(id: "dir", name: "sycophancy", maxActivation: 2),
        ], scan: scan)
        let path = try write("")
        try labels.write(to: path)
        let back = try FeatureLabels.load(path: path)
        #expect(back == labels)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        // One feature per line, numerically ordered ids, then names.
        let lines = text.split(separator: "\n")
        #expect(lines.count == 6)
        #expect(lines[1].hasPrefix(#"{"id":"2","#) && lines[2].hasPrefix(#"{"id":"10","#) && lines[3].hasPrefix(#"{"id":"dir","#))
        #expect(text.contains(#""activations":[0,0,4.21,0.000123,1.5]"#))
        #expect(text.contains(#""max_activation":4.2123456"#))
        #expect(text.contains(#""frequency":0.0123,"histogram":{"counts":[7,0,3,1],"upper":4.2123456},"max_activation""#))
        #expect(back[latent: 10]?.histogram == nil)
    }

    /// Bin j holds edge(j) ≤ v < edge(j+1) with edge(j) = upper·j/bins in Double; the last bin
    /// also holds upper itself. Values outside [0, upper] are not counted.
    @Test func histogramCountsExactlyWithStatedEdges() {
        // Edges 0, 0.5, 1, 1.5, 2 are exact: values on them go to the bin above, 2 to the last.
        let values: [Float] = [0.5, 1, 1.5, 2, 0.25, 0.49999997, 1.9999999, 1e-7, 1.0000001, 2, 0.75, 2.5, -1]
        let h = ActivationHistogram.counting(values, upper: 2, bins: 4)
        #expect(h.counts == [3, 2, 2, 4])
        #expect(h.total == 11)
        #expect(h.edge(4) == 2 && h.edge(1) == 0.5)
        // Edges that are not Floats: upper 1 in 10 bins. Float(0.1) lies above the Double 0.1 edge,
        // Float(0.7) below the 0.7 edge, Float(0.3) above 0.3.
        let tenths: [Float] = [0.1, 0.7, 0.3, 0.2, 0.6, 0.9, 1]
        let t = ActivationHistogram.counting(tenths, upper: 1, bins: 10)
        #expect(t.bin(of: 0.1) == 1 && t.bin(of: 0.7) == 6 && t.bin(of: 0.3) == 3 && t.bin(of: 1) == 9)
        // Against a brute-force count over the stated edges, on values across the range and
        // every value that is exactly an edge's Float or its neighbours.
        var rng = UInt64(0x9E3779B97F4A7C15)
        func next() -> Float {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            return Float(rng >> 40) / Float(1 << 24)
        }
        for (upper, bins) in [(Float(3.0587218), 20), (Float(1), 10), (Float(7.3), 7)] {
            var sample: [Float] = (0..<2000).map { _ in next() * upper }
            for j in 0...bins {
                let e = Float(Double(upper) * Double(j) / Double(bins))
                sample += [e, e.nextUp, e.nextDown].filter { $0 > 0 && $0 <= upper }
            }
            let counted = ActivationHistogram.counting(sample, upper: upper, bins: bins)
            let edges = (0...bins).map { Double(upper) * Double($0) / Double(bins) }
            let reference = (0..<bins).map { j in
                sample.filter { v in Double(v) >= edges[j] && (Double(v) < edges[j + 1] || (j == bins - 1 && v == upper)) }.count
            }
            #expect(counted.counts == reference, "upper \(upper), \(bins) bins")
            #expect(counted.total == sample.count)
        }
    }

    @Test func roundingToThreeDigits() {
        #expect(roundedToSignificantDigits(4.2149) == 4.21)
        #expect(roundedToSignificantDigits(0.00123456) == 0.00123)
        #expect(roundedToSignificantDigits(12345.6) == 12300)
        #expect(roundedToSignificantDigits(0) == 0)
    }

    @Test func malformedStatisticsAreSpecificErrors() throws {
        let good = #"{"source":"s","document":1,"tokens":["a","b"],"activations":[0,1],"peak_index":1,"peak_activation":1}"#
        _ = try FeatureLabels.load(path: try write(#"{"features":[{"id":"1","contexts":[\#(good)]}]}"#))
        let cases: [(String, String)] = [
            (#"{"features":[{"id":"1","contexts":[{"source":"s","document":1,"tokens":["a","b"],"activations":[0],"peak_index":1,"peak_activation":1}]}]}"#,
             "features[0] (id 1).contexts[0]: 2 tokens but 1 activations"),
            (#"{"features":[{"id":"1","contexts":[{"source":"s","document":1,"tokens":["a","b"],"activations":[0,1],"peak_index":2,"peak_activation":1}]}]}"#,
             "features[0] (id 1).contexts[0]: 'peak_index' must index the tokens (0..<2), found 2"),
            (#"{"features":[{"id":"1","contexts":[{"source":"s","document":-1,"tokens":[],"activations":[],"peak_index":0,"peak_activation":1}]}]}"#,
             "features[0] (id 1).contexts[0]: 'document' must be a whole number ≥ 0"),
            (#"{"features":[{"id":"1","contexts":{}}]}"#, "features[0] (id 1): 'contexts' must be a list"),
            (#"{"features":[{"id":"1","frequency":1.5}]}"#, "features[0] (id 1): frequency must be between 0 and 1, found 1.5"),
            (#"{"features":[{"id":"1","histogram":{"upper":2,"counts":[1,-2]}}]}"#,
             "features[0] (id 1).histogram: 'counts' must be whole numbers ≥ 0, found -2"),
            (#"{"features":[{"id":"1","histogram":{"upper":2,"counts":[]}}]}"#,
             "features[0] (id 1).histogram: 'counts' must be a non-empty list of counts"),
            (#"{"features":[{"id":"1","histogram":{"counts":[1]}}]}"#,
             "features[0] (id 1).histogram: 'upper' must be a finite number ≥ 0"),
            (#"{"features":[{"id":"1","histogram":[1,2]}]}"#,
             "features[0] (id 1).histogram: expected an object {\"upper\": …, \"counts\": […]}"),
            (#"{"features":[],"scan":{"corpora":["a"],"split":"train","hook":"h","tokens":-3,"window":1,"before":1,"after":1,"contexts_per_latent":1}}"#,
             "scan: 'tokens' must be a whole number ≥ 0"),
        ]
        for (text, message) in cases {
            let path = try write(text)
            #expect(throws: FeatureError.badLabels(path: path, reason: message)) { try FeatureLabels.load(path: path) }
        }
    }

    /// The typed fast reading gives exactly what the careful one gives, on the default pack's
    /// labels (every latent's contexts) and on files that take the fallback (a number where a
    /// string belongs, a bool, a whole number written as a float, a malformed context).
    @Test func fastAndCarefulReadingsAgree() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let path = repo.appendingPathComponent("packs/smollm2-l15/labels.json").path
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let fast = try #require(FeatureLabels.decodedFast(data), "the committed labels take the fast path")
        #expect(fast.hasContexts && fast.scan != nil)
        #expect(fast == (try FeatureLabels.decodedCarefully(data, path: path)))
        let texts = [
            #"{"features": [{"id": 3, "name": "a", "top_examples": ["x y"]}, {"id": "x", "max_activation": 2.5}]}"#,
            #"{"features": [{"id": 3.0, "name": null, "top_examples": 7}]}"#,
            #"{"features": [{"id": true}]}"#,
            #"{"features": [{"id": "1", "name": 5}]}"#,
            #"{"features": [{"id": "1", "contexts": [{"source": "s", "document": 2.0, "tokens": ["a"], "activations": [1e39], "peak_index": 0, "peak_activation": 3}]}]}"#,
            #"{"features": [{"id": "1", "contexts": [{"source": "s", "document": 1, "tokens": ["a"], "activations": [true], "peak_index": 0, "peak_activation": 3}]}]}"#,
            #"{"features": [{"id": "1", "histogram": {"upper": 2.5, "counts": [3, 0.0, 1]}}, {"id": "2", "histogram": null}]}"#,
            #"{"features": [{"id": "1", "histogram": {"upper": 2.5, "counts": [3, 0.5]}}]}"#,
            #"{"features": [], "scan": {"corpora": ["a"], "split": "t", "hook": "h", "model": 4, "tokens": 1, "window": 2, "before": 3, "after": 4, "contexts_per_latent": 5}}"#,
        ]
        for text in texts {
            let file = try write(text)
            let bytes = Data(text.utf8)
            let careful = Result { try FeatureLabels.decodedCarefully(bytes, path: file) }
            if let fast = FeatureLabels.decodedFast(bytes) {
                #expect(try careful.get() == fast, "\(text)")
            }
            switch (careful, Result { try FeatureLabels.load(path: file) }) {
            case let (.success(a), .success(b)): #expect(a == b, "\(text)")
            case let (.failure(a), .failure(b)): #expect("\(a)" == "\(b)", "\(text)")
            default: Issue.record("load and the careful reading disagree on \(text)")
            }
        }
    }

    /// `forEachHeadline` gives what `forEach` gives without the statistics, in the same order, on
    /// the default pack's labels and on labels set in memory over a file's.
    @Test func headlinesAreLabelsWithoutStatistics() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        var labels = try FeatureLabels.load(path: repo.appendingPathComponent("packs/smollm2-l15/labels.json").path)
        labels.set(FeatureLabel(id: "5", name: "set", maxActivation: 3, contexts: []))
        var whole: [FeatureLabel] = []
        labels.forEach { whole.append($0) }
        var headlines: [FeatureLabel] = []
        labels.forEachHeadline { headlines.append($0) }
        #expect(whole.count == 8192 && headlines.count == whole.count)
        #expect(whole.contains { $0.contexts?.isEmpty == false && $0.histogram != nil })
        let stripped = whole.map {
            FeatureLabel(id: $0.id, name: $0.name, description: $0.description, maxActivation: $0.maxActivation, frequency: $0.frequency)
        }
        #expect(headlines == stripped)
    }

    /// A labels file read again at the same path is the same index while its bytes are the same,
    /// and read anew when they change, even to bytes of the same length within the clock's tick.
    @Test func aFileReadAgainIsReadOnceWhileUnchanged() throws {
        let path = try write(#"{"features": [{"id": "1", "name": "aaaa"}]}"#)
        let first = try LabelsFile.opened(path).0
        #expect(try LabelsFile.opened(path).0 === first)
        try Data(#"{"features": [{"id": "1", "name": "bbbb"}]}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect(try FeatureLabels.load(path: path)["1"]?.name == "bbbb")
        #expect(try LabelsFile.opened(path).0 !== first)
        // A bad file is refused every time, not remembered.
        try Data(#"{"features": [{"id": "1", "name": 5}]}"#.utf8).write(to: URL(fileURLWithPath: path))
        #expect(throws: FeatureError.self) { try FeatureLabels.load(path: path) }
        #expect(throws: FeatureError.self) { try FeatureLabels.load(path: path) }
    }

    @Test func heapKeepsStrongestEarliestFirst() {
        var heap = ContextHeap()
        let values: [Float] = [1, 5, 3, 5, 2, 9, 5, 0.5, 4]
        for (n, v) in values.enumerated() {
            let c = FeatureContext(source: "s", document: n, tokens: ["t"], activations: [v], peakIndex: 0, peakActivation: v)
            if heap.admits(v, capacity: 4) { heap.insert(.init(value: v, sequence: n, context: c), capacity: 4) }
        }
        // 9, then the three 5s in arrival order (documents 1, 3, 6); 4 loses to them.
        #expect(heap.sortedDescending.map(\.context.document) == [5, 1, 3, 6])
    }
}
