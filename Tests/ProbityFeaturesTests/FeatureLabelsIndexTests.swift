// The labels file read in place (`FeatureLabels.load`: mapped, indexed, each label decoded when
// asked for) against the whole file decoded at once: the same labels for every latent of the
// default pack, the same choice among duplicate ids, the same errors, and the caps that bound it.

import Foundation
import Testing
@testable import ProbityFeatures

@Suite struct FeatureLabelsIndexTests {
    func write(_ text: String) throws -> String { try writeLabelsFile(text) }

    /// Every latent of the default pack's labels (10.9 MB, 8192 latents with contexts and
    /// histograms) looked up in the index equals the eagerly decoded label, and the file writes
    /// back byte for byte from either.
    @Test func indexedLookupsMatchTheEagerDecoder() throws {
        let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let path = repo.appendingPathComponent("packs/smollm2-l15/labels.json").path
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let eager = try FeatureLabels.decodedEagerly(data, path: path)
        let indexed = try FeatureLabels.load(path: path)
        #expect(indexed.count == eager.count && eager.count == 8192)
        #expect(indexed.scan == eager.scan && indexed.scan != nil)
        #expect(indexed.hasContexts && eager.hasContexts)
        var compared = 0
        eager.forEach { label in
            #expect(indexed[label.id] == label, "latent \(label.id)")
            compared += 1
        }
        #expect(compared == 8192)
        #expect(indexed[latent: 8192] == nil && indexed["x"] == nil)
        #expect(indexed.sorted == eager.sorted)
        #expect(indexed.encoded() == eager.encoded())
        #expect(indexed.encoded() == data, "the committed file is as this code writes it")
    }

    @Test func duplicatesNamesAndOverrides() throws {
        let text = #"{"features": [{"id": "1", "name": "a"}, {"id": "x", "name": "b"}, {"id": 1, "name": "c"}, {"id": "01", "name": "c"}]}"#
        let path = try write(text)
        let eager = try FeatureLabels.decodedEagerly(Data(text.utf8), path: path)
        var indexed = try FeatureLabels.load(path: path)
        #expect(indexed == eager)
        #expect(indexed.count == 3 && indexed[latent: 1]?.name == "c" && indexed["01"]?.name == "c")
        #expect(indexed.id(named: "a") == nil && eager.id(named: "a") == nil, "replaced by the later id 1")
        #expect(indexed.id(named: "b") == "x" && indexed.id(named: "c") == nil)
        #expect(indexed.sorted.map(\.id) == ["1", "01", "x"] || indexed.sorted.map(\.id) == ["01", "1", "x"])
        indexed.set(FeatureLabel(id: "01", name: "d"))
        indexed.set(FeatureLabel(id: "7", name: "e"))
        #expect(indexed.count == 4 && indexed.id(named: "c") == "1" && indexed.id(named: "d") == "01")
        #expect(indexed.id(named: "e") == "7" && indexed[latent: 7]?.name == "e")
    }

    /// Malformed files fail at load with exactly the whole-file reading's error, wherever the
    /// fault is.
    @Test func errorsAreTheEagerReadingsErrors() throws {
        let good = #"{"id": "0", "frequency": 0.5}"#
        let texts = [
            #"[]"#, #"{}"#, #"{"features": {}}"#, #"{"features": [1]}"#, #"{"features": [\#(good), 2]}"#,
            #"{"features": [\#(good), {"id": true}]}"#, #"{"features": [\#(good), {"id": "1", "frequency": 2}]}"#,
            #"{"features": [{"id": "1", "frequency": 2}, {"id": 1.5}]}"#,
            #"{"features": [{"id": "1", "frequency": 2}, 7]}"#,
            #"{"features": [\#(good)], "scan": {"corpora": 1}}"#, #"{"features": [\#(good)], "scan": 3}"#,
            #"{"features": [{"id": "1", "name": 4}]}"#, #"{"features": [\#(good),]}"#, #"{"features": [\#(good)], "features": []}"#,
            #"{"features": [{"id": "1", "max_activation": 1e39}]}"#,
        ]
        for text in texts {
            let path = try write(text)
            let eager = Result { try FeatureLabels.decodedEagerly(Data(text.utf8), path: path) }
            let indexed = Result { try FeatureLabels.load(path: path) }
            switch (eager, indexed) {
            case let (.failure(a), .failure(b)): #expect("\(a)" == "\(b)", "\(text)")
            default: Issue.record("\(text): eager \(eager), indexed \(indexed)")
            }
        }
        let fine = #"{"features": [\#(good), {"id": 2, "top_examples": 7}], "scan": null, "other": [1]}"#
        #expect(try FeatureLabels.load(path: try write(fine)) == FeatureLabels.decodedEagerly(Data(fine.utf8), path: "x"))
    }

    /// One feature may hold at most `maxFeatureValues` values, a file at most `maxFeatures`
    /// features: each decoded piece, and the index, stay within a stated size.
    @Test func capsBoundWhatOneFeatureAndTheIndexCost() throws {
        let many = Array(repeating: "0", count: LabelsFileLimits.maxFeatureValues).joined(separator: ",")
        let feature = #"{"id": "1", "top_examples": [\#(many)]}"#
        let big = try write(#"{"features": [{"id": "0"}, \#(feature)]}"#)
        // The object, its id and its list: three values more than the list's numbers.
        #expect(throws: FeatureError.badLabels(path: big, reason: "features[1]: expected at most 1048576 bytes and 65536 values in one "
                                               + "feature (a cap on the memory reading it takes), found \(feature.utf8.count) bytes "
                                               + "and 65539 values")) {
            try FeatureLabels.load(path: big)
        }
        let fits = Array(repeating: "0", count: LabelsFileLimits.maxFeatureValues - 3).joined(separator: ",")
        #expect(try FeatureLabels.load(path: try write(#"{"features": [{"id": "1", "top_examples": [\#(fits)]}]}"#)).count == 1)
        let features = Array(repeating: "{}", count: LabelsFileLimits.maxFeatures + 1).joined(separator: ",")
        let crowded = try write(#"{"features": [\#(features)]}"#)
        #expect(throws: FeatureError.badLabels(path: crowded, reason: "expected at most 1048576 features (a cap on the memory the index "
                                               + "takes), found more")) {
            try FeatureLabels.load(path: crowded)
        }
    }
}
