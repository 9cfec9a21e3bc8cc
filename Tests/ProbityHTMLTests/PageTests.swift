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
                == "../audits/default.yaml#L17")
        #expect(LinkBase(page: "p.html", workingDirectory: "/repo").href(location: "s.yaml") == "s.yaml")
        // A rule's file and the line of its id.
        #expect(LinkBase(page: "reports/p.html", workingDirectory: "/repo").href("rules/a.yaml", line: 11) == "../rules/a.yaml#L11")
    }

    @Test func linksPercentEncodeWhatWouldEndOrBendThePath() {
        let here = LinkBase(page: "p.html", workingDirectory: "/repo")
        // "#" and "?" would end the path, "%" would start an escape, ":" in a first segment reads as a scheme.
        #expect(here.href("rules/a b#c?d%e.yaml", line: 3) == "rules/a%20b%23c%3Fd%25e.yaml#L3")
        #expect(here.href("c:x.yaml") == "c%3Ax.yaml")
        #expect(here.href("règles/über.yaml") == "r%C3%A8gles/%C3%BCber.yaml")
        #expect(here.href("/abs dir/r&.yaml") == "file:///abs%20dir/r%26.yaml")
        #expect(here.href(location: "my suite#1.yaml:5:5") == "my%20suite%231.yaml#L5")
        // The way back up from the page is encoded too.
        #expect(LinkBase(page: "/out/p.html", workingDirectory: "/a b").href("r.yaml") == "../a%20b/r.yaml")
    }

    /// The default audit's report, as the repository keeps it.
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/reports/default.json").path

    @Test func summaryShowsEachRulesValidityAndShortDigests() throws {
        let report = try AuditReport.read(path: Self.fixture)
        let html = try ReportPage.render(report, path: "reports/default.html", workingDirectory: "/repo")
        let measured = report.rules.filter { $0.validity != nil }
        #expect(!measured.isEmpty)
        #expect(html.contains("(measured for \(measured.count) of \(report.rules.count) rules)"))
        for rule in measured {
            let v = try #require(rule.validity)
            let row = try #require(html.range(of: "<tr data-rule=\"\(rule.id)\"><td>\(rule.id)</td>"), "\(rule.id)")
            let rest = html[row.upperBound...].prefix { $0 != "\n" }
            let auroc = String(format: "%.3f", v.auroc), benign = String(format: "%.1f%%", v.benignFPR * 100)
            #expect(rest.contains("data-auroc>\(auroc)<") && rest.contains("data-benign-fpr>\(benign)<")
                    && rest.contains("data-n>\(v.n)<"), "\(rule.id): \(rest)")
        }
        // Digests: the first 12 hex digits shown, the whole in the title.
        for pack in report.packs {
            #expect(html.contains("title=\"sha256 \(pack.sha256)\">sha256 \(pack.sha256.prefix(12))…</span>"), "\(pack.name)")
            #expect(!html.contains(">sha256 \(pack.sha256)<"))
        }
        #expect(html.contains("title=\"\(report.model.sha256)\">\(report.model.sha256.prefix(12))…</td>"))
        // Rule links carry the line of the rule's id.
        for rule in report.rules {
            #expect(html.contains("href=\"../\(rule.file)#L\(rule.line)\">\(rule.file):\(rule.line)</a>"), "\(rule.id)")
        }
    }
}
