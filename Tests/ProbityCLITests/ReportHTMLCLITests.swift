// `probity report html` and `probity audit --html` end to end, the pages checked in headless
// Chromium (Tests/ProbityCLITests/Browser.swift): they load with no console error and no network
// request; the counts in the DOM are the report's; the findings filter and sort; model output and
// prompts holding markup stay text; a screenshot is not blank; the default audit's page stays under
// 5 MB. Bad reports are refused with exit 2 and the key at fault.

import Foundation
@testable import ProbityAudit
import ProbityRules
import Testing

@Suite(.serialized) struct ReportHTMLCLITests {
    static let repo = BrowserRun.repo
    static let fixture = repo.appendingPathComponent("Tests/Fixtures/reports/default.json").path

    /// Markup that would run or fetch if a page let it through: each sets `window.__probityInjected`.
    static let hostile = #"<script>window.__probityInjected = 1; document.title = "pwned"</script>"#
        + #""><img src=x onerror="window.__probityInjected = 2"><svg onload="window.__probityInjected = 3">"#

    /// A report whose prompt, answers, tokens, case id, rule text and suite name all carry `hostile`.
    static func hostileReport() -> AuditReport {
        let firing = AuditReport.Firing(rule: "r.<b>x</b>", severity: .high, value: 2.5, positions: [
            AuditReport.FiringPosition(position: 2, token: 7, piece: hostile, activations: ["p/" + hostile: 2.5]),
        ])
        let pieces = ["<s>", "Q:", hostile, " yes", "</script>"]
        let baseline = AuditReport.Run(text: hostile + " yes", tokens: 2, finishReason: .eos, fired: [firing], pieces: pieces,
                                       features: [AuditReport.PositionFeatures(position: 2, packs: [
                                           AuditReport.PackFeatures(pack: "p", relativeSquaredError: 0.1, top: [
                                               AuditReport.Latent(latent: 5, activation: 3),
                                           ]),
                                       ])], reconstruction: nil)
        var steered = baseline
        steered.text = "no " + hostile
        steered.fired = []
        let effects = AuditReport.Effects(textChanged: true, kl: [0.25, 0.5], klMean: 0.375, klMax: 0.5, top1ChangedFraction: 0.5,
                                          interventions: [AuditReport.InterventionEffect(
                                              rule: "r.<b>x</b>", positionsEdited: 2, firedBaseline: true, firesAfter: false,
                                              logitDeltas: [hostile: -1.5], logitDeltasFirst: [hostile: -2], alone: nil)])
        let rules = [AuditReport.Rule(id: "r.<b>x</b>", severity: .high, description: hostile, file: "rules/\(hostile).yaml", line: 4,
                                      intervenes: true, validity: nil)]
        let caseID = "case" + hostile
        let cases = [AuditReport.Case(id: caseID, index: 0, prompt: "Q:" + hostile, promptTokens: 3, location: "s.yaml:5:5",
                                      baseline: baseline, steered: steered, effects: effects, expectations: [],
                                      expectationsPassed: true)]
        return AuditReport(
            schemaVersion: AuditReport.schemaVersion, probityVersion: "test", complete: true, startedAt: "t0", finishedAt: "t1",
            model: AuditReport.Model(name: hostile, sha256: "00", path: "default"), packs: [],
            ruleFiles: [], rules: rules, suite: AuditReport.Suite(name: "s" + hostile, path: "s.yaml", sha256: "33", cases: 1),
            settings: AuditReport.Settings(maxTokens: 8, temperature: 0, topP: 1, seed: 0, chatFormat: "auto", failOn: .high,
                                           shard: AuditReport.Shard(index: 1, count: 1)),
            timings: AuditReport.Timings(totalSeconds: 1, cases: [caseID: 1]),
            summary: AuditReport.Summary(cases: cases, rules: rules.map { ($0.id, $0.severity) }, failOn: .high, complete: true,
                                         reconstruction: []),
            cases: cases)
    }

    /// Writes `report` to `dir/name.json`, runs `probity report html` on it, and returns the page's path.
    static func page(_ report: AuditReport, in dir: URL, name: String) throws -> String {
        let json = dir.appendingPathComponent("\(name).json").path
        try report.json().write(to: URL(fileURLWithPath: json))
        let html = dir.appendingPathComponent("\(name).html").path
        let r = try CLI.run(["report", "html", json, "-o", html])
        #expect(r.status == 0, "\(r.stderr)")
        return html
    }

    /// Links or sources that leave the file: any src or href with a scheme other than file.
    static func externalReferences(_ html: String) -> [String] {
        var found: [String] = []
        for attribute in ["src=\"", "href=\"", "src='", "href='", "url("] {
            var rest = Substring(html)
            while let r = rest.range(of: attribute) {
                let value = rest[r.upperBound...].prefix(while: { $0 != "\"" && $0 != "'" && $0 != ")" })
                if value.contains("://") && !value.hasPrefix("file://") { found.append(String(value)) }
                rest = rest[r.upperBound...]
            }
        }
        return found
    }

    @Test func markupInModelOutputAndPromptsStaysText() throws {
        let dir = try CLI.scratch()
        let report = Self.hostileReport()
        let html = try Self.page(report, in: dir, name: "hostile")
        let text = try String(contentsOfFile: html, encoding: .utf8)
        #expect(!text.contains("<script>window.__probityInjected"), "a hostile script reached the page as markup")
        #expect(!text.contains("<img"), "a hostile img reached the page as markup")
        #expect(text.contains("&lt;script&gt;window.__probityInjected"))
        #expect(Self.externalReferences(text).isEmpty, "\(Self.externalReferences(text))")

        let caseID = try #require(report.cases.first?.id)
        let run = try BrowserRun.load(html, evals: [
            ("injected", "typeof window.__probityInjected"),
            ("images", "document.images.length"),
            ("scripts", "document.scripts.length"),
            ("svgOnload", "document.querySelectorAll('[onload],[onerror]').length"),
            ("prompt", "document.querySelector('details.case pre.wrap').textContent"),
            ("caseID", "document.querySelector('#findings tbody tr').dataset.case"),
            ("token", "document.querySelector('.strip .t[data-p=\"2\"]').textContent"),
            ("openAndClick", "(() => { const d = document.querySelector('details.case'); d.open = true;"
                + " document.querySelector('.strip .t[data-p=\"2\"]').click();"
                + " return document.getElementById('tip-strip-0-b').textContent; })()"),
            ("injectedAfterClick", "typeof window.__probityInjected"),
        ])
        #expect(run.evals["injected"]?.string == "undefined")
        #expect(run.evals["injectedAfterClick"]?.string == "undefined")
        #expect(run.title == "Probity audit: s" + Self.hostile)
        #expect(run.evals["images"]?.int == 0)
        #expect(run.evals["scripts"]?.int == 1)
        #expect(run.evals["svgOnload"]?.int == 0)
        #expect(run.evals["prompt"]?.string == "Q:" + Self.hostile)
        #expect(run.evals["caseID"]?.string == caseID)
        #expect(run.evals["token"]?.string == Self.hostile)
        #expect(run.evals["openAndClick"]?.string?.contains("fired: r.<b>x</b>") == true, "\(String(describing: run.evals["openAndClick"]))")
        #expect(run.errors.isEmpty, "\(run.errors.map(\.text))")
        #expect(run.exceptions.isEmpty, "\(run.exceptions)")
        #expect(run.requests.isEmpty, "\(run.requests)")

        // Behind the escaping, the page's policy: a script that is not the page's own does not run,
        // and an image from the network is refused before it leaves (each refusal is a console error).
        let blocked = try BrowserRun.load(html, evals: [
            ("script", "(() => { const s = document.createElement('script'); s.textContent = 'window.__probityForeign = 1';"
                + " document.body.appendChild(s); return typeof window.__probityForeign; })()"),
            ("image", "(() => { const i = document.createElement('img'); i.src = 'https://example.com/x.png';"
                + " document.body.appendChild(i); return new Promise(r => setTimeout(() => r(i.complete), 300)); })()"),
        ])
        #expect(blocked.evals["script"]?.string == "undefined")
        #expect(blocked.requests.map(\.url) == ["https://example.com/x.png"] && blocked.requests.allSatisfy { $0.blocked == "csp" },
                "\(blocked.requests)")
        #expect(blocked.errors.count == 2 && blocked.errors.allSatisfy { $0.text.contains("Content Security Policy") },
                "\(blocked.errors.map(\.text))")
    }

    /// The count shown for each severity and rule, and the number of finding rows.
    static let countsExpression = """
        JSON.stringify({findings: document.querySelector('[data-count="findings"]').textContent,
          cases: document.querySelector('[data-count="cases"]').textContent,
          severities: Object.fromEntries([...document.querySelectorAll('[data-severity-count]')].map(e => [e.dataset.severityCount, +e.textContent])),
          rules: Object.fromEntries([...document.querySelectorAll('[data-rule-count]')].map(e => [e.dataset.ruleCount, +e.textContent])),
          rows: document.querySelectorAll('#findings tbody tr').length})
        """

    /// Sets the findings filters and returns how many rows are visible, and the shown count.
    static func filterExpression(severity: String = "", rule: String = "", kase: String = "") -> String {
        """
        (() => { const s = document.getElementById('filter-severity'), r = document.getElementById('filter-rule'),
          c = document.getElementById('filter-case');
          s.value = \(Self.js(severity)); s.dispatchEvent(new Event('change'));
          r.value = \(Self.js(rule)); r.dispatchEvent(new Event('change'));
          c.value = \(Self.js(kase)); c.dispatchEvent(new Event('input'));
          return [[...document.querySelectorAll('#findings tbody tr')].filter(tr => !tr.hidden).length,
                  +document.getElementById('findings-shown').textContent]; })()
        """
    }

    /// `s` as a JavaScript string literal.
    static func js(_ s: String) -> String {
        (try? JSONEncoder().encode(s)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
    }

    struct Counts: Decodable {
        let findings: String
        let cases: String
        let severities: [String: Int]
        let rules: [String: Int]
        let rows: Int
    }

    /// The page of `report` in the browser: counts equal the report's, filters and sorting work,
    /// no console error, no request, a screenshot that is not blank.
    static func checkPage(_ html: String, of report: AuditReport, screenshot: String) throws {
        let s = report.summary
        let findings = report.cases.flatMap { c in c.baseline.fired.map { (c.id, $0) } }
        let someRule = try #require(s.findingsByRule.filter { $0.value > 0 }.keys.sorted().first)
        let someCase = try #require(findings.first?.0)
        let lowOrInfo: RuleSeverity = (s.findingsBySeverity[.low] ?? 0) > 0 ? .low : .info
        let run = try BrowserRun.load(html, evals: [
            ("counts", Self.countsExpression),
            ("bySeverity", Self.filterExpression(severity: lowOrInfo.rawValue)),
            ("byRule", Self.filterExpression(rule: someRule)),
            ("byCase", Self.filterExpression(kase: someCase)),
            ("none", Self.filterExpression(severity: "critical", rule: someRule)),
            ("all", Self.filterExpression()),
            ("sorted", "(() => { document.querySelector('#findings th button[data-key=\"value\"]').click();"
                + " return [...document.querySelectorAll('#findings tbody tr')].map(tr => +tr.dataset.value); })()"),
            ("strips", "document.querySelectorAll('.strip').length"),
            ("shaded", "[...document.querySelectorAll('.strip .t')].filter(t => t.style.backgroundColor !== '').length"),
        ], screenshot: screenshot)
        #expect(run.errors.isEmpty, "\(run.errors.map(\.text))")
        #expect(run.exceptions.isEmpty, "\(run.exceptions)")
        #expect(run.requests.isEmpty, "\(run.requests)")

        let countsText = try #require(run.evals["counts"]?.string)
        let counts = try JSONDecoder().decode(Counts.self, from: Data(countsText.utf8))
        #expect(counts.findings == "\(s.findings)" && counts.cases == "\(s.cases)")
        #expect(counts.rows == s.findings && counts.rows == findings.count)
        for severity in RuleSeverity.allCases {
            #expect(counts.severities[severity.rawValue] == s.findingsBySeverity[severity] ?? 0, "\(severity)")
        }
        #expect(counts.rules == s.findingsByRule)

        func visible(_ name: String) -> [Int] { (run.evals[name]?.array ?? []).compactMap(\.int) }
        let expectSeverity = findings.filter { $0.1.severity == lowOrInfo }.count
        #expect(visible("bySeverity") == [expectSeverity, expectSeverity])
        let expectRule = s.findingsByRule[someRule] ?? -1
        #expect(visible("byRule") == [expectRule, expectRule])
        let expectCase = findings.filter { $0.0.lowercased().contains(someCase.lowercased()) }.count
        #expect(visible("byCase") == [expectCase, expectCase])
        let expectNone = findings.filter { $0.1.severity == .critical && $0.1.rule == someRule }.count
        #expect(visible("none") == [expectNone, expectNone])
        #expect(visible("all") == [s.findings, s.findings])
        let values = (run.evals["sorted"]?.array ?? []).compactMap(\.number)
        #expect(values.count == s.findings && values == values.sorted(), "\(values)")
        #expect(run.evals["strips"]?.int == report.cases.reduce(0) { $0 + ($1.steered == nil ? 1 : 2) })
        #expect((run.evals["shaded"]?.int ?? 0) > 0, "no token shaded by its strip's selected feature")

        let shot = try #require(run.screenshot)
        #expect(shot.width == 1280 && shot.height == 900)
        #expect(shot.distinctColors >= 64 && shot.mostCommonFraction < 0.97,
                "a blank-looking screenshot: \(shot.distinctColors) colours, the commonest on \(shot.mostCommonFraction) of pixels")
    }

    @Test func defaultAuditPageShowsTheReport() throws {
        let dir = try CLI.scratch()
        let report = try AuditReport.read(path: Self.fixture)
        let html = dir.appendingPathComponent("default.html").path
        // Run from the repository, as scripts/run does, so pack labels name the latents.
        let r = try CLI.run(["report", "html", Self.fixture, "-o", html], in: Self.repo)
        #expect(r.status == 0, "\(r.stderr)")
        let size = try #require(try FileManager.default.attributesOfItem(atPath: html)[.size] as? Int)
        #expect(size < 5 << 20, "the default audit's page is \(size) bytes")
        let text = try String(contentsOfFile: html, encoding: .utf8)
        #expect(Self.externalReferences(text).isEmpty, "\(Self.externalReferences(text))")
        // Links to rule files point from the page's directory at the repository's files.
        let rule = try #require(report.rules.first)
        #expect(text.contains("\(rule.file):\(rule.line)</a>"))
        try Self.checkPage(html, of: report, screenshot: dir.appendingPathComponent("default.png").path)

        // On a phone: nothing wider than the screen but the scrolling tables.
        let phone = try BrowserRun.load(html, evals: [("overflow", "document.documentElement.scrollWidth")], width: 390, height: 844, mobile: true)
        #expect((phone.evals["overflow"]?.int ?? .max) <= 390, "the page is wider than a phone: \(String(describing: phone.evals["overflow"]))")
        #expect(phone.errors.isEmpty && phone.exceptions.isEmpty && phone.requests.isEmpty)
    }

    @Test func shardAndMergedReportsMakePages() throws {
        let dir = try CLI.scratch()
        let full = try AuditReport.read(path: Self.fixture)
        // The default report cut into two shards, as `audit --shard I/2` would write them.
        var paths: [String] = []
        for index in 1...2 {
            var shard = full
            shard.cases = full.cases.filter { $0.index % 2 == index - 1 }
            shard.settings.shard = AuditReport.Shard(index: index, count: 2)
            shard.timings.cases = full.timings.cases.filter { id, _ in shard.cases.contains { $0.id == id } }
            shard.summary = AuditReport.Summary(cases: shard.cases, rules: full.rules.map { ($0.id, $0.severity) },
                                                failOn: full.settings.failOn, complete: true, reconstruction: [])
            let path = dir.appendingPathComponent("shard\(index).json").path
            try shard.json().write(to: URL(fileURLWithPath: path))
            paths.append(path)
        }
        let merged = dir.appendingPathComponent("merged.json").path
        let m = try CLI.run(["report", "merge"] + paths + ["--out", merged])
        #expect(m.status == 0 || m.status == 1, "\(m.stderr)")
        let report = try AuditReport.read(path: merged)
        #expect(report.summary.findings == full.summary.findings)
        let html = dir.appendingPathComponent("merged.html").path
        let r = try CLI.run(["report", "html", merged, "-o", html])
        #expect(r.status == 0, "\(r.stderr)")
        try Self.checkPage(html, of: report, screenshot: dir.appendingPathComponent("merged.png").path)

        // A shard alone makes its own page, with its own counts; the default name is the report's with .html.
        let one = try CLI.run(["report", "html", paths[0]])
        #expect(one.status == 0, "\(one.stderr)")
        let page = try String(contentsOfFile: dir.appendingPathComponent("shard1.html").path, encoding: .utf8)
        let shard = try AuditReport.read(path: paths[0])
        #expect(page.contains("<div class=\"num\" data-count=\"findings\">\(shard.summary.findings)</div>"))
        #expect(page.contains("<th>shard</th><td class=\"wrap\">1/2</td>"))
    }

    @Test func badReportsAreRefusedWithTheKeyAtFault() throws {
        let dir = try CLI.scratch()
        let good = try String(contentsOfFile: Self.fixture, encoding: .utf8)
        let renamed = dir.appendingPathComponent("renamed.json").path
        try good.replacingOccurrences(of: "\"pieces\"", with: "\"tokens_text\"").write(toFile: renamed, atomically: true, encoding: .utf8)
        let r = try CLI.run(["report", "html", renamed, "-o", dir.appendingPathComponent("x.html").path])
        #expect(r.status == 2)
        #expect(r.stderr.contains("renamed.json: cases[0].baseline.pieces: missing"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.appendingPathComponent("x.html").path))

        let cut = dir.appendingPathComponent("cut.json").path
        try String(good.prefix(1000)).write(toFile: cut, atomically: true, encoding: .utf8)
        let c = try CLI.run(["report", "html", cut])
        #expect(c.status == 2)
        #expect(c.stderr.contains("cut.json:") && c.stderr.contains("not valid JSON"), "\(c.stderr)")

        let missing = try CLI.run(["report", "html", dir.appendingPathComponent("none.json").path])
        #expect(missing.status == 2)
        #expect(missing.stderr.contains("none.json: cannot read: no such file"), "\(missing.stderr)")
    }

    @Test func auditWritesItsPageWithHTML() throws {
        let dir = try CLI.scratch()
        let suite = try AuditCLITests.suite(dir, expect: "fires")
        let out = dir.appendingPathComponent("r.json").path, html = dir.appendingPathComponent("r.html").path
        let r = try CLI.run(["audit", suite, "--out", out, "--junit", dir.appendingPathComponent("r.xml").path,
                             "--html", html, "--threads", "2"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("page: \(html)"))
        let report = try AuditReport.read(path: out)
        // The page of the run equals the page `report html` makes of its JSON.
        let again = dir.appendingPathComponent("again.html").path
        #expect(try CLI.run(["report", "html", out, "-o", again]).status == 0)
        #expect(try String(contentsOfFile: html, encoding: .utf8) == String(contentsOfFile: again, encoding: .utf8))
        try Self.checkPage(html, of: report, screenshot: dir.appendingPathComponent("r.png").path)
    }
}
