// What derived a pack (pack.json `provenance.items`): written with the manifest, read back
// strictly on any kind of pack, and every malformed record an error naming the key.

import Foundation
import Testing
@testable import ProbityFeatures
@testable import ProbityLM

@Suite struct DerivationItemsTests {
    static let a = String(repeating: "0a", count: 32), b = String(repeating: "1b", count: 32)

    /// An SAE pack whose manifest carries `provenance` as given (JSON text).
    func writePack(provenance: String) throws -> URL {
        var fx = SAEFixture()
        let dir = try fx.write(to: try scratchDirectory())
        let text = """
            {"schema_version": 1, "name": "tiny", "kind": "sae", "hook": "blocks.1.hook_resid_post", "provenance": \(provenance)}
            """
        try Data(text.utf8).write(to: dir.appendingPathComponent("pack.json"))
        return dir
    }

    @Test func writtenAndReadBack() throws {
        var fx = SAEFixture()
        let dir = try fx.write(to: try scratchDirectory())
        let manifest = PackManifest(name: "tiny", kind: .sae, modelName: nil, modelSHA256: nil, hook: "blocks.1.hook_resid_post",
                                    labels: nil, provenanceJSON: #"{"method": "test"}"#,
                                    derivationItems: DerivationItems(fingerprints: [Self.b, Self.a, Self.b]))
        try manifest.jsonData().write(to: dir.appendingPathComponent("pack.json"))
        let pack = try FeaturePack.load(path: dir.path)
        #expect(pack.derivationItems == DerivationItems(fingerprints: [Self.a, Self.b]))
        // Sorted and unique in the file, beside the rest of the provenance.
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: dir.appendingPathComponent("pack.json"))) as? [String: Any]
        let provenance = object?["provenance"] as? [String: Any]
        #expect(provenance?["method"] as? String == "test")
        let items = provenance?["items"] as? [String: Any]
        #expect(items?["scheme"] as? String == "probity-item-v1" && items?["sha256"] as? [String] == [Self.a, Self.b])

        // A pack that records none has none; so has a bare SAELens directory.
        #expect(try FeaturePack.load(path: try writePack(provenance: #"{"method": "test"}"#).path).derivationItems == nil)
    }

    @Test func malformedRecordsAreErrorsNamingTheKey() throws {
        let cases: [(String, String, String, String)] = [
            (#"{"items": ["x"]}"#, "provenance.items", "an object {scheme, sha256}", "an array"),
            (#"{"items": {"scheme": "probity-item-v2", "sha256": []}}"#, "provenance.items.scheme", "'probity-item-v1'", "'probity-item-v2'"),
            (#"{"items": {"sha256": []}}"#, "provenance.items.scheme", "a string", "nothing"),
            (#"{"items": {"scheme": "probity-item-v1"}}"#, "provenance.items.sha256", "an array of fingerprints", "nothing"),
            (#"{"items": {"scheme": "probity-item-v1", "sha256": [], "n": 2}}"#, "provenance.items", "only the keys scheme and sha256", "'n'"),
            (#"{"items": {"scheme": "probity-item-v1", "sha256": ["\#(Self.a.uppercased())"]}}"#, "provenance.items.sha256[0]",
             "64 lowercase hex digits", "'\(Self.a.uppercased())'"),
            (#"{"items": {"scheme": "probity-item-v1", "sha256": ["\#(Self.a)", "abc"]}}"#, "provenance.items.sha256[1]",
             "64 lowercase hex digits", "'abc'"),
            (#"{"items": {"scheme": "probity-item-v1", "sha256": ["\#(Self.b)", "\#(Self.a)"]}}"#, "provenance.items.sha256[1]",
             "fingerprints sorted and unique", "'\(Self.a)' after '\(Self.b)'"),
            (#"{"items": {"scheme": "probity-item-v1", "sha256": ["\#(Self.a)", "\#(Self.a)"]}}"#, "provenance.items.sha256[1]",
             "fingerprints sorted and unique", "'\(Self.a)' after '\(Self.a)'"),
        ]
        for (provenance, key, expected, found) in cases {
            let dir = try writePack(provenance: provenance)
            #expect(throws: FeatureError.badManifest(path: dir.path + "/pack.json", key: key, expected: expected, found: found), "\(provenance)") {
                _ = try FeaturePack.load(path: dir.path)
            }
        }
    }
}
