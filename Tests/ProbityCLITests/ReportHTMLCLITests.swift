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
        let moved = AuditReport.TopChanges(raised: [AuditReport.TokenChange(token: hostile, id: 7, probabilityDelta: 0.25, logitDelta: 3)],
                                           lowered: [AuditReport.TokenChange(token: " yes", id: 9, probabilityDelta: -0.125, logitDelta: -1)])
        let effects = AuditReport.Effects(textChanged: true, kl: [0.25, 0.5], klMean: 0.375, klMax: 0.5, top1ChangedFraction: 0.5,
                                          topChanges: moved,
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
            ("moved", "document.querySelector('table.moved[id] td.tok').textContent"),
        ])
        #expect(run.evals["moved"]?.string.flatMap { try? JSONDecoder().decode(String.self, from: Data($0.utf8)) } == Self.hostile, "\(String(describing: run.evals["moved"]))")
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
    static func checkPage(_ html: String, of report: AuditReport, screenshot: String, featureSwitch: Bool = true) throws {
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
            ("validity", Self.validityExpression),
            ("cases", Self.casesExpression),
            ("switch", Self.switchExpression),
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

        try Self.checkValidity(run, of: report)
        try Self.checkCases(run, of: report)
        if featureSwitch {
            try Self.checkFeatureSwitch(run, of: report)
        } else {
            #expect(run.evals["switch"] == .null, "a strip with two features: check its switching")
        }

        let shot = try #require(run.screenshot)
        #expect(shot.width == 1280 && shot.height == 900)
        #expect(shot.blankness == nil, "\(shot.blankness ?? "")")
    }

    /// Per rule row of the summary's validity table: [AUROC, TPR, FPR, benign FPR, n] as shown.
    static let validityExpression = """
        JSON.stringify(Object.fromEntries([...document.querySelectorAll('#validity tbody tr')].map(tr => [tr.dataset.rule,
          ['auroc', 'tpr', 'fpr', 'benignFpr', 'n'].map(k => { const td = [...tr.cells].find(c => k in c.dataset); return td ? td.textContent : null; })])))
        """

    static func checkValidity(_ run: BrowserRun, of report: AuditReport) throws {
        let text = try #require(run.evals["validity"]?.string)
        let shown = try JSONDecoder().decode([String: [String?]].self, from: Data(text.utf8))
        #expect(Set(shown.keys) == Set(report.rules.map(\.id)))
        for rule in report.rules {
            guard let v = rule.validity else {
                #expect(shown[rule.id] == [nil, nil, nil, nil, nil], "\(rule.id) is unmeasured")
                continue
            }
            func percent(_ x: Double) -> String { String(format: "%.1f%%", x * 100) }
            #expect(shown[rule.id] == [String(format: "%.3f", v.auroc), percent(v.tpr), percent(v.fpr), percent(v.benignFPR), "\(v.n)"],
                    "\(rule.id): \(String(describing: shown[rule.id]))")
        }
    }

    /// Per case (every case opened): the answers the word diff gives back, its changed pieces, the
    /// KL bars' heights, and per intervention row its rule, "still fires?" cell and logit-change rows.
    static let casesExpression = """
        JSON.stringify([...document.querySelectorAll('details.case')].map(d => { d.open = true;
          const p = d.querySelector('p.diff');
          const join = skip => p ? [...p.children].filter(e => e.tagName !== skip).map(e => e.textContent).join('') : null;
          return {id: d.dataset.case, baseline: join('INS'), steered: join('DEL'),
            changed: p ? p.querySelectorAll('ins, del').length : 0,
            bars: [...d.querySelectorAll('svg.chart rect.bar')].map(r => +r.getAttribute('height')),
            barVisible: [...d.querySelectorAll('svg.chart')].every(c => c.getBoundingClientRect().height > 20),
            interventions: [...d.querySelectorAll('table.effects > tbody > tr')].map(tr => ({rule: tr.cells[0].textContent,
              stillFires: tr.cells[3].textContent, flagged: tr.cells[3].classList.contains('bad'),
              moved: [...tr.cells[5].querySelectorAll('tr')].map(r => [JSON.parse(r.cells[0].textContent), r.cells[2].textContent,
                r.cells[1].querySelector('rect').getAttribute('class'), +r.cells[1].querySelector('rect').getAttribute('width')]),
              deltas: [...tr.cells[6].querySelectorAll('tr')].map(r => [JSON.parse(r.cells[0].textContent), r.cells[2].textContent,
                r.cells[1].querySelector('rect').getAttribute('class'), +r.cells[1].querySelector('rect').getAttribute('width')])})),
            moved: [...d.querySelectorAll('table.moved[id] > tbody > tr')].map(r => [JSON.parse(r.cells[0].textContent), r.cells[2].textContent,
                r.cells[1].querySelector('rect').getAttribute('class'), +r.cells[1].querySelector('rect').getAttribute('width')])}; }))
        """

    struct ShownCase: Decodable {
        struct Intervention: Decodable {
            let rule: String, stillFires: String, flagged: Bool
            let moved: [Delta]
            let deltas: [Delta]
        }
        /// token, mean shown, bar class, bar width.
        struct Delta: Decodable {
            let token: String, mean: String, direction: String, width: Double
            init(from decoder: Decoder) throws {
                var c = try decoder.unkeyedContainer()
                token = try c.decode(String.self); mean = try c.decode(String.self)
                direction = try c.decode(String.self); width = try c.decode(Double.self)
            }
        }
        let id: String, baseline: String?, steered: String?, changed: Int
        let bars: [Double], barVisible: Bool
        let interventions: [Intervention]
        let moved: [Delta]
    }

    /// The rows a page shows for a pass's most moved tokens: raised then lowered, the change in
    /// probability points, and bars scaled to the largest change.
    static func checkMoved(_ rows: [ShownCase.Delta], _ changes: AuditReport.TopChanges?, _ label: String) {
        let all = changes.map { $0.raised + $0.lowered } ?? []
        #expect(rows.map(\.token) == all.map(\.token), "\(label): \(rows.map(\.token))")
        let scale = all.map { abs($0.probabilityDelta) }.max() ?? 0
        for (row, c) in zip(rows, all) {
            let shown = (c.probabilityDelta >= 0 ? "+" : "") + String(format: "%.2f", c.probabilityDelta * 100).replacingOccurrences(of: "-", with: "−")
            #expect(row.mean == shown && row.direction == (c.probabilityDelta >= 0 ? "up" : "down"), "\(label) \(c.token): \(row.mean)")
            if scale > 0 { #expect(abs(row.width - abs(c.probabilityDelta) / scale * 40) < 0.01, "\(label) \(c.token): bar \(row.width)") }
        }
    }

    static func checkCases(_ run: BrowserRun, of report: AuditReport) throws {
        let text = try #require(run.evals["cases"]?.string)
        let shown = try JSONDecoder().decode([ShownCase].self, from: Data(text.utf8))
        #expect(shown.map(\.id) == report.cases.map(\.id))
        for (c, page) in zip(report.cases, shown) {
            // The word diff gives back both answers, and marks changes exactly when they differ.
            if let steered = c.steered {
                #expect(page.baseline == c.baseline.text && page.steered == steered.text, "\(c.id): the diff does not join back")
                #expect((page.changed > 0) == (c.baseline.text != steered.text), "\(c.id): \(page.changed) changed pieces")
            } else {
                #expect(page.baseline == nil && page.steered == nil)
            }
            // One bar per generated position, heights proportional to KL.
            let kl = c.effects?.kl ?? []
            #expect(page.bars.count == kl.count, "\(c.id): \(page.bars.count) bars for \(kl.count) positions")
            if let top = kl.max(), top > 0, let tallest = page.bars.max(), tallest > 0 {
                #expect(page.barVisible)
                for (bar, value) in zip(page.bars, kl) {
                    #expect(abs(bar / tallest - value / top) < 0.01, "\(c.id): bar \(bar) of \(tallest) for KL \(value) of \(top)")
                }
            }
            // The tokens every rule steering moved most, then per rule those it moved alone.
            checkMoved(page.moved, c.effects?.topChanges, c.id)
            // Per intervening rule: "still fires?" and its largest logit changes, strongest first.
            let interventions = c.effects?.interventions ?? []
            #expect(page.interventions.map(\.rule) == interventions.map(\.rule), "\(c.id)")
            for (i, row) in zip(interventions, page.interventions) {
                #expect(row.stillFires == (i.firesAfter ? "yes" : "no") && row.flagged == i.firesAfter, "\(c.id) \(i.rule)")
                checkMoved(row.moved, i.alone?.topChanges, "\(c.id) \(i.rule) alone")
                let expected = i.logitDeltas.sorted { abs($0.value) != abs($1.value) ? abs($0.value) > abs($1.value) : $0.key < $1.key }.prefix(8)
                #expect(row.deltas.map(\.token) == expected.map(\.key), "\(c.id) \(i.rule): \(row.deltas.map(\.token))")
                let scale = expected.first.map { abs($0.value) } ?? 0
                for (d, e) in zip(row.deltas, expected) {
                    let mean = String(format: "%.3f", e.value).replacingOccurrences(of: "-", with: "−")
                    #expect(d.mean == mean && d.direction == (e.value >= 0 ? "up" : "down"), "\(e.key): \(d.mean) \(d.direction)")
                    #expect(abs(d.width - abs(e.value) / scale * 40) < 0.01, "\(e.key): bar width \(d.width)")
                }
            }
        }
    }

    /// The first strip with at least two features to shade by: each option chosen in turn, and per
    /// option the tokens shaded (position, alpha of the background).
    static let switchExpression = """
        (() => { const pick = s => document.querySelector('select[data-strip="' + s.id + '"]');
          const strip = [...document.querySelectorAll('.strip')].find(s => pick(s) && pick(s).options.length >= 2);
          if (!strip) { return null; }
          const select = pick(strip), options = {};
          const shaded = () => [...strip.querySelectorAll('.t')].filter(t => t.style.backgroundColor !== '')
            .map(t => [+t.dataset.p, +(t.style.backgroundColor.match(/rgba?\\(([^)]*)\\)/)[1].split(',')[3] || 1)]);
          for (const o of [...select.options]) { select.value = o.value; select.dispatchEvent(new Event('change')); options[o.value] = shaded(); }
          return JSON.stringify({strip: strip.id, options: options}); })()
        """

    /// Choosing another feature re-shades the strip: each option shades exactly the positions where
    /// the report holds that feature's activation, darker where it is stronger.
    static func checkFeatureSwitch(_ run: BrowserRun, of report: AuditReport) throws {
        let text = try #require(run.evals["switch"]?.string, "no strip with two features to shade by")
        struct Shown: Decodable { let strip: String; let options: [String: [[Double]]] }
        let shown = try JSONDecoder().decode(Shown.self, from: Data(text.utf8))
        // strip-<case index>-<b|s>
        let parts = shown.strip.split(separator: "-")
        let index = try #require(parts.count == 3 ? Int(parts[1]) : nil)
        let c = try #require(report.cases.first { $0.index == index })
        let r = try #require(parts[2] == "b" ? c.baseline : c.steered)
        #expect(shown.options.count >= 2)
        var distinct = Set<[[Double]]>()
        for (key, tokens) in shown.options {
            var series: [Int: Double] = [:]
            if key.hasPrefix("rule:") {
                let feature = String(key.dropFirst(5))
                for f in r.fired { for p in f.positions { if let v = p.activations[feature] { series[p.position] = v } } }
            } else {
                let name = try #require(key.hasPrefix("sae:") ? key.dropFirst(4).split(separator: "#").map(String.init) : nil)
                for pf in r.features ?? [] {
                    for pack in pf.packs where pack.pack == name.first {
                        for l in pack.top where "\(l.latent)" == name.last { series[pf.position] = l.activation }
                    }
                }
            }
            #expect(Set(tokens.map { Int($0[0]) }) == Set(series.keys), "\(key): shaded \(tokens.map { Int($0[0]) })")
            let top = series.values.map(abs).max() ?? 0
            for t in tokens {
                guard let v = series[Int(t[0])], top > 0 else { continue }
                #expect(abs(t[1] - (0.12 + 0.78 * abs(v) / top)) < 0.005, "\(key) at \(Int(t[0])): alpha \(t[1]) for \(v) of \(top)")
            }
            distinct.insert(tokens)
        }
        #expect(distinct.count >= 2, "every feature shades the strip alike")
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
        let phone = try BrowserRun.load(html, evals: [("overflow", Self.overflowExpression)], width: 390, height: 844, mobile: true)
        struct Overflow: Decodable { let scrollWidth: Int; let over: [String] }
        let shown = try JSONDecoder().decode(Overflow.self, from: Data(try #require(phone.evals["overflow"]?.string).utf8))
        #expect(shown.scrollWidth <= 390 && shown.over.isEmpty, "wider than a phone: \(shown.scrollWidth) px; \(shown.over)")
        #expect(phone.errors.isEmpty && phone.exceptions.isEmpty && phone.requests.isEmpty)
    }

    /// Elements wider than the viewport, outside the tables that scroll on their own (every case opened).
    static let overflowExpression = """
        (() => { document.querySelectorAll('details').forEach(d => d.open = true);
          const w = document.documentElement.clientWidth, out = [];
          for (const e of document.querySelectorAll('body *')) {
            if ((e.parentElement && e.parentElement.closest('.scroll')) || (e.closest('svg') && e.tagName !== 'svg')) { continue; }
            const r = e.getBoundingClientRect();
            if (r.width > 0 && r.right > w + 0.5) { out.push(e.tagName + '.' + e.className + ' to ' + Math.round(r.right) + 'px'); }
          }
          return JSON.stringify({scrollWidth: document.documentElement.scrollWidth, over: out}); })()
        """

    /// A token, URL or name with no place to break, as model output and file names can be.
    static let unbroken = "https://example.com/" + String(repeating: "verylongpathsegment", count: 12) + "?q=" + String(repeating: "x", count: 80)

    @Test func longTokensAndURLsWrapOnAPhone() throws {
        let dir = try CLI.scratch()
        var report = try AuditReport.read(path: Self.fixture)
        let c = try #require(report.cases.indices.first { report.cases[$0].steered != nil })
        report.cases[c].prompt += Self.unbroken
        report.cases[c].baseline.text += " " + Self.unbroken
        report.cases[c].baseline.pieces[1] = Self.unbroken
        report.cases[c].steered?.text += Self.unbroken + Self.unbroken
        report.rules[0].description += Self.unbroken
        report.model.path = Self.unbroken
        report.packs[0].path = Self.unbroken
        report.suite.name += Self.unbroken
        let html = try Self.page(report, in: dir, name: "long")
        struct Overflow: Decodable { let scrollWidth: Int; let over: [String] }
        for (width, height) in [(390, 844), (320, 640)] {
            let phone = try BrowserRun.load(html, evals: [("overflow", Self.overflowExpression)], width: width, height: height, mobile: true)
            let shown = try JSONDecoder().decode(Overflow.self, from: Data(try #require(phone.evals["overflow"]?.string).utf8))
            #expect(shown.scrollWidth <= width && shown.over.isEmpty, "\(width) px: page \(shown.scrollWidth) px wide; \(shown.over)")
            #expect(phone.errors.isEmpty && phone.exceptions.isEmpty && phone.requests.isEmpty)
        }
    }

    @Test func ruleLinksReachFilesWithAwkwardNames() throws {
        let dir = try CLI.scratch()
        var report = try AuditReport.read(path: Self.fixture)
        // A rule file whose name holds what ends, escapes or bends a URL's path.
        let name = "rules dir/a#b?c%d:é.yaml"
        try FileManager.default.createDirectory(at: dir.appendingPathComponent("rules dir"), withIntermediateDirectories: true)
        try "rules: []\n".write(to: dir.appendingPathComponent(name), atomically: true, encoding: .utf8)
        report.rules[0].file = name
        report.rules[0].line = 7
        let json = dir.appendingPathComponent("awkward.json").path
        try report.json().write(to: URL(fileURLWithPath: json))
        let html = dir.appendingPathComponent("pages/awkward.html").path
        let r = try CLI.run(["report", "html", json, "-o", html], in: dir)
        #expect(r.status == 0, "\(r.stderr)")
        let id = report.rules[0].id
        let run = try BrowserRun.load(html, evals: [
            ("rule", "(() => { const a = document.querySelector('#rule-table tr[data-rule=\"\(id)\"] a.loc'); const u = new URL(a.href);"
                + " return [u.protocol, decodeURIComponent(u.pathname), u.hash, u.search, a.textContent]; })()"),
            ("finding", "(() => { const tr = document.querySelector('#findings tbody tr[data-rule=\"\(id)\"]'); if (!tr) { return null; }"
                + " const u = new URL(tr.querySelector('a.loc').href); return [decodeURIComponent(u.pathname), u.hash]; })()"),
        ])
        let target = dir.appendingPathComponent(name).standardizedFileURL.path
        #expect(run.evals["rule"] == .array([.string("file:"), .string(target), .string("#L7"), .string(""), .string("\(name):7")]),
                "\(String(describing: run.evals["rule"]))")
        if (report.summary.findingsByRule[id] ?? 0) > 0 {
            #expect(run.evals["finding"] == .array([.string(target), .string("#L7")]))
        }
    }

    @Test func logitChangesOfNamedTokensShowStrongestFirst() throws {
        // The default rules name no tokens, so their effects have no logit changes: give one case's
        // interventions ten, more than the page shows, raised and lowered.
        let dir = try CLI.scratch()
        var report = try AuditReport.read(path: Self.fixture)
        let c = try #require(report.cases.indices.first { !(report.cases[$0].effects?.interventions.isEmpty ?? true) })
        let values: [Double] = [0.5, -2.25, 1.125, -0.0625, 3.5, -1.75, 0.25, 2.0, -0.875, 0.0]
        var deltas: [String: Double] = [:]
        for (i, v) in values.enumerated() { deltas[" tok\(i)"] = v }
        for i in report.cases[c].effects?.interventions.indices ?? 0..<0 {
            report.cases[c].effects?.interventions[i].logitDeltas = deltas
            report.cases[c].effects?.interventions[i].logitDeltasFirst = deltas.mapValues { $0 / 2 }
        }
        let html = try Self.page(report, in: dir, name: "deltas")
        try Self.checkPage(html, of: report, screenshot: dir.appendingPathComponent("deltas.png").path)
        // Seen directly: the first rows, and nothing beyond eight.
        let run = try BrowserRun.load(html, evals: [
            ("rows", "[...document.querySelectorAll('#case-\(report.cases[c].index) table.effects > tbody > tr')].map(tr =>"
                + " [...tr.cells[6].querySelectorAll('tr')].map(r => JSON.parse(r.cells[0].textContent)))"),
        ])
        let strongest: Value = .array([" tok4", " tok1", " tok7", " tok5", " tok2", " tok8", " tok0", " tok6"].map { .string($0) })
        #expect(run.evals["rows"]?.array?.allSatisfy { $0 == strongest } == true, "\(String(describing: run.evals["rows"]))")
    }

    typealias Value = BrowserRun.Value

    @Test func blankScreenshotsAreCaught() throws {
        // The check the page tests apply to their screenshots, shown failing on pages that show nothing.
        let dir = try CLI.scratch()
        for (name, body) in [("blank", ""), ("line", "<p>one line of text and nothing else</p>")] {
            let page = dir.appendingPathComponent("\(name).html")
            try "<!DOCTYPE html><html><head><title>x</title></head><body>\(body)</body></html>".write(to: page, atomically: true, encoding: .utf8)
            let run = try BrowserRun.load(page.path, evals: [], screenshot: dir.appendingPathComponent("\(name).png").path)
            let shot = try #require(run.screenshot)
            #expect(shot.blankness != nil, "\(name): \(shot)")
        }
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
        // One rule on one feature: no strip has a second feature to switch to.
        try Self.checkPage(html, of: report, screenshot: dir.appendingPathComponent("r.png").path, featureSwitch: false)
    }
}
