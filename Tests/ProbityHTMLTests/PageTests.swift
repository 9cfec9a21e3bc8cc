// The page parts that need no browser: the word diff, escaping, the Content-Security-Policy hashes
// that admit the page's own style and script, and links from a page to the audit's files.

import Foundation
import ProbityAudit
import Testing
@testable import ProbityHTML

@Suite struct PageTests {
    @Test func wordDiffJoinsBackIntoBothTexts() {
        let a = "The boiling point is 100 degrees Celsius.\nYes."
        let b = "The boiling point is 100°C. Yes, really."
        let pieces = WordDiff.diff(a, b)
        #expect(pieces.filter { $0.kind != .added }.map(\.text).joined() == a)
        #expect(pieces.filter { $0.kind != .removed }.map(\.text).joined() == b)
        #expect(pieces.first == DiffPiece(kind: .same, text: "The boiling point is "))
        #expect(pieces.contains(DiffPiece(kind: .removed, text: "100 degrees Celsius.\nYes.")))
        #expect(WordDiff.diff("", "") == [])
        #expect(WordDiff.diff("same text", "same text") == [DiffPiece(kind: .same, text: "same text")])
        #expect(WordDiff.diff("", "new") == [DiffPiece(kind: .added, text: "new")])
    }

    @Test func escapingLeavesNoMarkup() {
        #expect(Markup.escape(#"<script>alert("x")</script> & 'y'"#)
                == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;")
        // Entities in model output are shown as written, not decoded.
        #expect(Markup.escape("&lt;") == "&amp;lt;")
        #expect(Markup.number(-1.5, digits: 1) == "−1.5" && Markup.number(.nan) == "n/a")
    }

    @Test func pageAdmitsExactlyItsOwnStyleAndScript() throws {
        let html = try Page.render(name: "test", template: "<meta content=\"{{csp}}\"><style>{{{style}}}</style><script>{{{script}}}</script>{{view}}",
                                   view: "<b>", style: "b{color:red}", script: "var x = 1;")
        #expect(html.contains("&lt;b&gt;"))
        // The policy sits in an attribute, its quotes escaped like any value.
        #expect(html.contains("script-src &#39;\(Markup.cspHash("var x = 1;"))&#39;"))
        #expect(html.contains("style-src &#39;\(Markup.cspHash("b{color:red}"))&#39;"))
        #expect(html.contains("default-src &#39;none&#39;"))
        // The hash of "abc", base64, as any SHA-256 implementation gives it.
        #expect(Markup.cspHash("abc") == "sha256-ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=")
        #expect(throws: HTMLTemplateError.self) {
            _ = try Page.render(name: "broken", template: "{{#open}}", view: 0, style: "", script: "")
        }
    }

    @Test func linksLeadFromThePageToTheAuditsFiles() {
        #expect(LinkBase(page: "reports/default.html", workingDirectory: "/repo").href("rules/a.yaml") == "../rules/a.yaml")
        #expect(LinkBase(page: "default.html", workingDirectory: "/repo").href("rules/a.yaml") == "rules/a.yaml")
        #expect(LinkBase(page: "/out/x/p.html", workingDirectory: "/repo").href("rules/a.yaml") == "../../repo/rules/a.yaml")
        #expect(LinkBase(page: "p.html", workingDirectory: "/repo").href("/abs/r.yaml") == "file:///abs/r.yaml")
        #expect(LinkBase(page: "reports/p.html", workingDirectory: "/repo").href(location: "audits/default.yaml:17:7")
                == "../audits/default.yaml")
    }
}
