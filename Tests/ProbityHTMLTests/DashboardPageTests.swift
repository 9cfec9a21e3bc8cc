// The dashboard's markup, without a browser: pages written from the default dictionary's labels
// show each latent's numbers, activation histogram and contexts as the labels hold them, escape
// every token and rule text, link rules to their file and line, and the index lists and links every
// page.

import Foundation
import ProbityFeatures
import Testing
@testable import ProbityHTML

@Suite struct DashboardPageTests {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// `html` between the first `start` and the next `end` after it.
    static func section(_ html: String, from start: String, to end: String) -> Substring? {
        guard let a = html.range(of: start), let b = html[a.upperBound...].range(of: end) else { return nil }
        return html[a.upperBound..<b.lowerBound]
    }

    static func count(_ needle: String, in text: Substring) -> Int { text.components(separatedBy: needle).count - 1 }

    /// The counts a histogram's bars show, from their titles (`<title>0.00–0.21: 12 tokens</title>`).
    static func barCounts(_ svg: Substring) -> [Int] {
        svg.components(separatedBy: "<title>").dropFirst().compactMap { title in
            guard let end = title.range(of: " tokens</title>"), let colon = title[..<end.lowerBound].range(of: ": ") else { return nil }
            return Int(title[colon.upperBound..<end.lowerBound])
        }
    }

    /// The labels file of the default dictionary read as plain JSON (not through the labels reader):
    /// the scanned token count and, for latent `id`, its frequency and histogram counts.
    static func rawLabels(_ path: String, latent id: Int) throws -> (tokens: Int, frequency: Double, counts: [Int]) {
        let top = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any])
        let scan = try #require(top["scan"] as? [String: Any])
        let features = try #require(top["features"] as? [[String: Any]])
        let entry = try #require(features.first { $0["id"] as? String == String(id) })
        let histogram = try #require(entry["histogram"] as? [String: Any], "latent \(id) has a histogram")
        return (try #require(scan["tokens"] as? Int), try #require(entry["frequency"] as? Double),
                try #require(histogram["counts"] as? [Int]))
    }

    /// A latent's page shows the histogram of all its firing activations over the scan: its bars add
    /// up to the latent's firing positions, which agree with its frequency over the scanned tokens
    /// (frequency is kept to 4 significant digits), and the caption says so.
    @Test func histogramCountsEveryFiringPosition() throws {
        let packPath = Self.repo.appendingPathComponent("packs/smollm2-l15").path
        let pack = try FeaturePack.load(path: packPath)
        let negation = try #require(pack.labels.id(named: "negation").flatMap { Int($0) })
        let raw = try Self.rawLabels(packPath + "/labels.json", latent: negation)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("probity-dashboard-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FeatureDashboard.write(pack: pack, latents: [negation], extras: [:], to: dir.path)
        let html = try String(contentsOf: dir.appendingPathComponent("latent-\(negation).html"), encoding: .utf8)
        let histogram = try #require(Self.section(html, from: "<figure id=\"histogram\">", to: "</figure>"))
        let bars = Self.barCounts(histogram)
        #expect(bars == raw.counts)
        let firing = bars.reduce(0, +)
        #expect(firing > 0)
        #expect(String(format: "%.4g", Double(firing) / Double(raw.tokens)) == String(format: "%.4g", raw.frequency),
                "\(firing) firing positions of \(raw.tokens) tokens vs frequency \(raw.frequency)")
        #expect(abs(Double(firing) - raw.frequency * Double(raw.tokens)) <= 5e-4 * Double(firing))
        #expect(histogram.contains("Activations at all \(firing) firing positions of \(raw.tokens) scanned train tokens, in 20 equal bins"))
        #expect(!histogram.contains("top contexts"))

        // Labels without a histogram fall back to the top contexts' activations, and say so.
        let old = dir.appendingPathComponent("old-pack")
        try FileManager.default.createDirectory(at: old, withIntermediateDirectories: true)
        for file in ["pack.json", "cfg.json", "sae_weights.safetensors"] {
            try FileManager.default.copyItem(atPath: packPath + "/" + file, toPath: old.appendingPathComponent(file).path)
        }
        var labels = pack.labels
        var label = try #require(labels[latent: negation])
        label.histogram = nil
        labels.set(label)
        try labels.write(to: old.appendingPathComponent("labels.json").path)
        let oldPack = try FeaturePack.load(path: old.path)
        #expect(oldPack.labels[latent: negation]?.histogram == nil)
        try FeatureDashboard.write(pack: oldPack, latents: [negation], extras: [:], to: old.appendingPathComponent("out").path)
        let fallback = try String(contentsOf: old.appendingPathComponent("out/latent-\(negation).html"), encoding: .utf8)
        let figure = try #require(Self.section(fallback, from: "<figure id=\"histogram\">", to: "</figure>"))
        #expect(figure.contains("Only the nonzero activations at the tokens of the top contexts below"))
        let contextValues = (label.contexts ?? []).flatMap(\.activations).filter { $0 > 0 }.count
        #expect(Self.barCounts(figure).reduce(0, +) == contextValues && contextValues > 0)
    }

    @Test func latentPagesShowTheLabelsAndEscapeEverything() throws {
        let pack = try FeaturePack.load(path: Self.repo.appendingPathComponent("packs/smollm2-l15").path)
        let negation = try #require(pack.labels.id(named: "negation").flatMap { Int($0) })
        let label = try #require(pack.labels[latent: negation])
        let contexts = try #require(label.contexts)
        let hostile = #"<script>window.x = 1</script>"#
        let rule = DashboardRule(id: "r.<b>", severity: "info", description: "watches " + hostile, file: "rules dir/n#1.yaml", line: 12,
                                 use: "watches")
        let extras = [negation: LatentExtras(promoted: [(hostile, 2.5), (" nor", 1.25)], suppressed: [(" yes", -3)], rules: [rule])]
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("probity-dashboard-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let pages = try FeatureDashboard.write(pack: pack, latents: [negation, 0], extras: extras, to: dir.appendingPathComponent("out").path,
                                               workingDirectory: dir.path)
        #expect(pages == 3)
        let html = try String(contentsOf: dir.appendingPathComponent("out/latent-\(negation).html"), encoding: .utf8)

        #expect(html.contains("<h1>#\(negation) negation</h1>"))
        #expect(html.contains("<div class=\"num\" id=\"frequency\">\(String(format: "%.4f", (label.frequency ?? -1) * 100))% of scanned tokens</div>"))
        #expect(html.contains("<div class=\"num\" id=\"max-activation\">\(String(format: "%.3f", Double(label.maxActivation ?? -1)))</div>"))
        // Every context, every token of it, its peak marked once.
        let list = try #require(Self.section(html, from: "<ol class=\"contexts\">", to: "</ol>"))
        #expect(Self.count("<li>", in: list) == contexts.count)
        #expect(Self.count("<span class=\"t ", in: list) == contexts.reduce(0) { $0 + $1.tokens.count })
        #expect(Self.count(" peak\"", in: list) == contexts.count)
        // The histogram: the stored counts, one bar per bin.
        let histogram = try #require(Self.section(html, from: "<figure id=\"histogram\">", to: "</figure>"))
        #expect(Self.count("class=\"bar\"", in: histogram) == label.histogram?.bins)
        #expect(Self.barCounts(histogram) == label.histogram?.counts)
        // Model output and rule text as text; the rule linked to its file and line, percent-encoded.
        #expect(!html.contains("<script>window.x") && !html.contains("<b>"))
        #expect(html.contains("<td class=\"tok\">&quot;&lt;script&gt;window.x = 1&lt;/script&gt;&quot;</td><td class=\"n up\">2.500</td>"))
        #expect(html.contains("<td class=\"tok\">&quot; yes&quot;</td><td class=\"n down\">−3.000</td>"))
        #expect(html.contains("<li data-rule=\"r.&lt;b&gt;\"><strong>r.&lt;b&gt;</strong>"))
        #expect(html.contains("<a class=\"loc\" href=\"../rules%20dir/n%231.yaml#L12\">rules dir/n#1.yaml:12</a>"))
        #expect(html.contains("watches &lt;script&gt;"))
        // Exactly one script, the page's own (empty), admitted by hash.
        #expect(Self.count("<script>", in: Substring(html)) == 1)
        #expect(html.contains("script-src &#39;\(Markup.cspHash(DashboardTemplate.latentScript))&#39;"))

        // A latent without extras says what it lacks rather than showing empty tables.
        let plain = try String(contentsOf: dir.appendingPathComponent("out/latent-0.html"), encoding: .utf8)
        #expect(plain.contains("Not computed.") && plain.contains("No rule uses this latent."))

        // The index: a row per page, linking it, searchable by id, label and rule.
        let index = try String(contentsOf: dir.appendingPathComponent("out/index.html"), encoding: .utf8)
        let body = try #require(Self.section(index, from: "<tbody>", to: "</tbody>"))
        #expect(Self.count("<tr ", in: body) == 2)
        #expect(body.contains("<tr data-search=\"\(negation) negation r.&lt;b&gt;\" data-id=\"\(negation)\"><td><a href=\"latent-\(negation).html\">\(negation)</a>"))
        #expect(body.contains("<td><a href=\"latent-0.html\">0</a>"))
        #expect(index.contains("2 of \(pack.sae?.dSAE ?? -1) latents"))
    }
}
