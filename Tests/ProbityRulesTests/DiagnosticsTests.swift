// Diagnostic rendering (text and JSON), ordering, and the `did you mean` machinery.

import Foundation
import Testing
@testable import ProbityRules

@Suite struct DiagnosticsTests {
    @Test func textIsCompilerStyleInSourceOrder() {
        var d = Diagnostics()
        d.warning("later", at: FileLocation(file: "b.yaml", line: 1, column: 1))
        d.error("feature 9000 is out of range for pack 'p' (d_sae 8192)", at: FileLocation(file: "a.yaml", line: 12, column: 9))
        d.error("unknown key 'treshold'", at: FileLocation(file: "a.yaml", line: 3, column: 7), hint: "did you mean 'threshold'?")
        d.error("no such file or directory", at: .file("c.yaml"))
        #expect(d.rendered() == """
            a.yaml:3:7: error: unknown key 'treshold'
                hint: did you mean 'threshold'?
            a.yaml:12:9: error: feature 9000 is out of range for pack 'p' (d_sae 8192)
            b.yaml:1:1: warning: later
            c.yaml: error: no such file or directory
            """)
        #expect(d.errorCount == 3)
        #expect(d.warningCount == 1)
        #expect(d.hasErrors)
    }

    @Test func jsonHasEveryFieldWithSortedKeys() throws {
        var d = Diagnostics()
        d.error("unknown key 'treshold'", at: FileLocation(file: "rules/a.yaml", line: 3, column: 7), hint: "did you mean 'threshold'?")
        d.warning("can never fire", at: FileLocation(file: "rules/a.yaml", line: 9, column: 5))
        let json = d.json()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
        #expect(object["errors"] as? Int == 1)
        #expect(object["warnings"] as? Int == 1)
        let items = try #require(object["diagnostics"] as? [[String: Any]])
        #expect(items.count == 2)
        #expect(items[0]["file"] as? String == "rules/a.yaml")
        #expect(items[0]["line"] as? Int == 3)
        #expect(items[0]["column"] as? Int == 7)
        #expect(items[0]["severity"] as? String == "error")
        #expect(items[0]["message"] as? String == "unknown key 'treshold'")
        #expect(items[0]["hint"] as? String == "did you mean 'threshold'?")
        #expect(items[1]["hint"] == nil)
        // Keys are sorted so reports diff cleanly.
        let keys = ["\"column\"", "\"file\"", "\"hint\"", "\"line\"", "\"message\"", "\"severity\""]
        let positions = keys.compactMap { json.range(of: $0)?.lowerBound }
        #expect(positions.count == keys.count)
        #expect(positions == positions.sorted())
    }

    @Test func editDistanceAndSuggestions() {
        #expect(editDistance("treshold", "threshold") == 1)
        #expect(editDistance("kitten", "sitting") == 3)
        #expect(editDistance("", "abc") == 3)
        #expect(editDistance("wacth", "watch") == 1)
        #expect(editDistance("ca", "abc") == 3)
        #expect(closest(to: "treshold", in: ["scope", "threshold", "kind"]) == "threshold")
        #expect(closest(to: "clamps", in: PluginRegistry.standard.actionNames) == "clamp")
        #expect(closest(to: "zzz", in: ["scope", "threshold"]) == nil)
    }

    @Test func errorDescriptionsCarryTheLocation() {
        let e = RulesError.duplicateKey(FileLocation(file: "r.yaml", line: 4, column: 3), key: "c",
                                        first: FileLocation(file: "r.yaml", line: 3, column: 3))
        #expect(e.description == "r.yaml:4:3: duplicate key 'c' (first at line 3, column 3)")
        #expect(e.diagnostics == [Diagnostic(.error, "duplicate key 'c' (first at line 3, column 3)",
                                             at: FileLocation(file: "r.yaml", line: 4, column: 3))])
    }
}
