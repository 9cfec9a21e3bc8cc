// `probity features dashboard` on the default dictionary, checked in headless Chromium: the index
// lists and searches the latents; a latent's page shows its labels' numbers, histogram and contexts, the
// tokens its decoder direction promotes through the output head (the negation latent's are
// negative-polarity words), and the rules that use it; nothing loads from the network. The whole
// default dashboard builds in under a minute. Bad ids are refused with exit 2.

import Foundation
import ProbityFeatures
import Testing

@Suite(.serialized) struct FeatureDashboardCLITests {
    static let repo = BrowserRun.repo
    static let pack = repo.appendingPathComponent("packs/smollm2-l15").path

    @Test func defaultDictionaryDashboard() throws {
        let dir = try CLI.scratch().appendingPathComponent("dash")
        let start = Date()
        let r = try CLI.run(["features", "dashboard", Self.pack, "--out", dir.path, "--threads", "2"], in: Self.repo)
        let seconds = Date().timeIntervalSince(start)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(seconds < 60, "the default dashboard took \(seconds) s")
        let labels = try FeaturePack.load(path: Self.pack).labels
        let named = labels.sorted.filter { $0.name != nil }
        let pages = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.hasPrefix("latent-") }
        // The 100 most frequent latents and every named one.
        #expect(pages.count >= 100 && pages.count <= 100 + named.count, "\(pages.count) pages")
        for label in named { #expect(pages.contains("latent-\(label.id).html"), "\(label.id)") }

        let index = try BrowserRun.load(dir.appendingPathComponent("index.html").path, evals: [
            ("rows", "document.querySelectorAll('#latents tbody tr').length"),
            ("search", "(() => { const i = document.getElementById('search'); i.value = 'negation'; i.dispatchEvent(new Event('input'));"
                + " return [[...document.querySelectorAll('#latents tbody tr')].filter(t => !t.hidden).map(t => t.dataset.id),"
                + " document.getElementById('shown').textContent]; })()"),
            ("byID", "(() => { const i = document.getElementById('search'); i.value = '6562'; i.dispatchEvent(new Event('input'));"
                + " return [...document.querySelectorAll('#latents tbody tr')].filter(t => !t.hidden).map(t => t.dataset.id); })()"),
        ])
        #expect(index.evals["rows"]?.int == pages.count)
        let negation = try #require(labels.id(named: "negation"))
        #expect(index.evals["search"] == .array([.array([.string(negation)]), .string("1")]))
        #expect(index.evals["byID"]?.array?.contains(.string("6562")) == true)
        #expect(index.errors.isEmpty && index.exceptions.isEmpty && index.requests.isEmpty, "\(index.errors) \(index.requests)")

        let label = try #require(labels[negation])
        let page = try BrowserRun.load(dir.appendingPathComponent("latent-\(negation).html").path, evals: [
            ("title", "document.querySelector('h1').textContent"),
            ("frequency", "document.getElementById('frequency').textContent"),
            ("max", "document.getElementById('max-activation').textContent"),
            ("contexts", "document.querySelectorAll('.contexts li').length"),
            ("promoted", "[...document.querySelectorAll('#promoted td.tok')].map(t => JSON.parse(t.textContent))"),
            ("suppressed", "document.querySelectorAll('#suppressed td.tok').length"),
            ("bars", "document.querySelectorAll('svg.chart rect').length"),
            ("histogram", "document.querySelector('#histogram figcaption').textContent"),
        ], screenshot: dir.deletingLastPathComponent().appendingPathComponent("latent.png").path)
        #expect(page.evals["title"]?.string == "#\(negation) negation")
        let frequency = try #require(label.frequency), maxActivation = try #require(label.maxActivation)
        #expect(page.evals["frequency"]?.string == String(format: "%.4f%% of scanned tokens", frequency * 100))
        #expect(page.evals["max"]?.string == String(format: "%.3f", Double(maxActivation)))
        #expect(page.evals["contexts"]?.int == label.contexts?.count)
        let promoted = (page.evals["promoted"]?.array ?? []).compactMap(\.string)
        #expect(promoted.count == 12 && page.evals["suppressed"]?.int == 12)
        let negativePolarity: Set = [" nor", " anymore", " unless", " necessarily", " anything", " whatsoever", " ever", " any", " anywhere"]
        #expect(promoted.filter(negativePolarity.contains).count >= 4, "the negation latent promotes \(promoted)")
        // The histogram of every firing position the scan counted, one bar per stored bin.
        let histogram = try #require(label.histogram)
        #expect(page.evals["bars"]?.int == histogram.bins)
        #expect(page.evals["histogram"]?.string?.hasPrefix("Activations at all \(histogram.total) firing positions of "
                                                          + "\(labels.scan?.tokens ?? -1) scanned train tokens") == true)
        #expect(page.errors.isEmpty && page.exceptions.isEmpty && page.requests.isEmpty, "\(page.errors) \(page.requests)")
        let shot = try #require(page.screenshot)
        #expect(shot.blankness == nil, "\(shot.blankness ?? "")")

        // The rules that watch a latent are on its page, linked to the file and line of their id.
        let praise = try #require(labels.id(named: "praise"))
        let text = try String(contentsOf: dir.appendingPathComponent("latent-\(praise).html"), encoding: .utf8)
        #expect(text.contains("<strong>sycophancy.damp-praise</strong>") && text.contains("rules/sycophancy.yaml:"))
        let rules = try BrowserRun.load(dir.appendingPathComponent("latent-\(praise).html").path, evals: [
            ("links", "JSON.stringify([...document.querySelectorAll('#rules li')].map(li => { const u = new URL(li.querySelector('a.loc').href);"
                + " return [li.dataset.rule, decodeURIComponent(u.pathname), u.hash]; }))"),
            ("overflow", ReportHTMLCLITests.overflowExpression),
        ], width: 390, height: 844, mobile: true)
        let links = try JSONDecoder().decode([[String]].self, from: Data(try #require(rules.evals["links"]?.string).utf8))
        #expect(links.contains { $0.first == "sycophancy.damp-praise" }, "\(links)")
        for link in links {
            let path = try #require(link.count == 3 ? link[1] : nil)
            let line = try #require(Int(link[2].dropFirst(2)), "\(link)")
            let file = try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\n")
            #expect(line >= 1 && line <= file.count && file[line - 1].contains("id: \(link[0])"), "\(link)")
        }
        let overflow = try #require(rules.evals["overflow"]?.string)
        #expect(overflow.contains("\"over\":[]"), "\(overflow)")
    }

    @Test func chosenLatentsAndBadIDs() throws {
        let dir = try CLI.scratch()
        let out = dir.appendingPathComponent("two").path
        let r = try CLI.run(["features", "dashboard", Self.pack, "--latents", "6562,negation", "--rules", "rules/sycophancy.yaml",
                             "--out", out, "--threads", "2"], in: Self.repo)
        #expect(r.status == 0, "\(r.stderr)")
        let pages = try FileManager.default.contentsOfDirectory(atPath: out).sorted()
        #expect(pages.count == 3 && pages.contains("index.html") && pages.contains("latent-6562.html"))

        let bad = try CLI.run(["features", "dashboard", Self.pack, "--latents", "8192", "--out", out], in: Self.repo)
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("--latents: expected latent ids from 0 to 8191, found '8192'"), "\(bad.stderr)")
        let both = try CLI.run(["features", "dashboard", Self.pack, "--latents", "1", "--top", "3", "--out", out], in: Self.repo)
        #expect(both.status == 2 && both.stderr.contains("give --latents or --top, not both"), "\(both.stderr)")
        let empty = try CLI.run(["features", "dashboard", Self.pack, "--latents", "1,,2", "--out", out], in: Self.repo)
        #expect(empty.status == 2 && empty.stderr.contains("--latents: expected ids separated by commas"), "\(empty.stderr)")
    }
}
