// The dashboard's pages: what each shows (plain, formatted values) and their writing. Templates
// are in DashboardTemplate.swift; every value they place is escaped.

import Foundation
import ProbityFeatures

/// What a dashboard holds for one latent beyond its label: logit effects and rules.
public struct LatentExtras: Sendable {
    public var promoted: [(String, Float)]
    public var suppressed: [(String, Float)]
    public var rules: [DashboardRule]

    public init(promoted: [(String, Float)], suppressed: [(String, Float)], rules: [DashboardRule]) {
        self.promoted = promoted
        self.suppressed = suppressed
        self.rules = rules
    }
}

struct LatentView {
    struct Token { let text: String; let level: String; let tip: String; let peak: Bool }
    struct Context { let source: String; let peak: String; let tokens: [Token] }
    struct Logit { let token: String; let value: String }
    struct Rule { let id: String; let severity: String; let description: String; let location: String; let href: String; let use: String }

    let pack: String, hook: String, id: String, name: String, hasName: Bool, description: String, hasDescription: Bool
    let frequency: String, maxActivation: String, scan: String
    let histogram: String, hasHistogram: Bool, histogramCaption: String
    let contexts: [Context], hasContexts: Bool
    let promoted: [Logit], suppressed: [Logit], hasLogits: Bool
    let rules: [Rule], hasRules: Bool

    init(pack: FeaturePack, index: Int, extras: LatentExtras?, links: LinkBase) {
        let label = pack.labels[latent: index]
        self.pack = pack.name
        hook = pack.hook.name
        id = "\(index)"
        name = label?.name ?? "latent \(index)"
        hasName = label?.name != nil
        description = label?.description ?? ""
        hasDescription = !description.isEmpty
        frequency = label?.frequency.map { Markup.number($0 * 100, digits: 4) + "% of scanned tokens" } ?? "not measured"
        maxActivation = label?.maxActivation.map { Markup.number(Double($0)) } ?? "not measured"
        scan = pack.labels.scan.map { "\($0.tokens) \($0.split) tokens of \($0.corpora.joined(separator: ", ")) at \($0.hook)" }
            ?? "no statistics scan recorded (run `probity features stats`)"
        let contexts = label?.contexts ?? []
        let scale = Double(label?.maxActivation ?? contexts.map(\.peakActivation).max() ?? 0)
        self.contexts = contexts.map { c in
            Context(source: "\(c.source) #\(c.document)", peak: Markup.number(Double(c.peakActivation)),
                    tokens: c.tokens.enumerated().map { i, piece in
                        let a = i < c.activations.count ? Double(c.activations[i]) : 0
                        let level = scale > 0 && a > 0 ? min(9, Int((a / scale * 9).rounded(.up))) : 0
                        return Token(text: CaseView.display(piece), level: "a\(level)",
                                     tip: "\(piece.debugDescription): \(Markup.number(a))", peak: i == c.peakIndex)
                    })
        }
        hasContexts = !contexts.isEmpty
        if let h = label?.histogram, h.total > 0 {
            // Every position where the latent fired over the scan, as `features stats` counted them.
            let scanned = pack.labels.scan.map { " of \($0.tokens) scanned \($0.split) tokens" } ?? ""
            histogramCaption = "Activations at all \(h.total) firing positions\(scanned), in \(h.bins) equal bins from 0 to "
                + "the max activation \(Markup.number(Double(h.upper))) (a bin holds its left edge, the last also the max)."
            histogram = SVGChart.binned(h.counts, upper: Double(h.upper), caption: histogramCaption)
            hasHistogram = true
        } else {
            // Labels from before histograms were kept: only the top contexts' activations are known.
            let values = contexts.flatMap { $0.activations.map(Double.init) }.filter { $0 > 0 }
            hasHistogram = !values.isEmpty
            histogramCaption = "Only the nonzero activations at the tokens of the top contexts below: these labels keep no "
                + "histogram of all activations (probity features stats writes one)."
            histogram = values.isEmpty ? "" : SVGChart.histogram(values, caption: histogramCaption)
        }
        promoted = (extras?.promoted ?? []).map { Logit(token: $0.0.debugDescription, value: Markup.number(Double($0.1))) }
        suppressed = (extras?.suppressed ?? []).map { Logit(token: $0.0.debugDescription, value: Markup.number(Double($0.1))) }
        hasLogits = !promoted.isEmpty
        rules = (extras?.rules ?? []).map {
            Rule(id: $0.id, severity: $0.severity, description: $0.description, location: $0.location,
                 href: links.href($0.file, line: $0.line), use: $0.use)
        }
        hasRules = !rules.isEmpty
    }
}

struct DashboardIndexView {
    struct Row { let id: String; let name: String; let named: Bool; let frequency: String; let frequencySort: String; let maxActivation: String; let href: String; let search: String; let rules: String }
    let pack: String, hook: String, count: String, total: String, scan: String
    let rows: [Row]
}

extension FeatureDashboard {
    /// A latent's page name in the dashboard directory.
    static func pageName(_ index: Int) -> String { "latent-\(index).html" }

    /// Writes `latents`' pages and the index into `directory`; returns the pages written. Links to
    /// rule files lead from `directory` to the files named relative to `workingDirectory`.
    @discardableResult
    public static func write(pack: FeaturePack, latents: [Int], extras: [Int: LatentExtras], to directory: String,
                             workingDirectory: String = FileManager.default.currentDirectoryPath) throws -> Int {
        let links = LinkBase(page: directory + "/index.html", workingDirectory: workingDirectory)
        var rows: [DashboardIndexView.Row] = []
        for index in latents {
            let view = LatentView(pack: pack, index: index, extras: extras[index], links: links)
            let html = try Page.render(name: "latent", template: DashboardTemplate.latent, view: view,
                                       style: DashboardTemplate.style, script: DashboardTemplate.latentScript)
            try Page.write(html, to: directory + "/" + pageName(index))
            let label = pack.labels[latent: index]
            let rules = (extras[index]?.rules ?? []).map(\.id).joined(separator: ", ")
            rows.append(DashboardIndexView.Row(
                id: view.id, name: view.name, named: view.hasName, frequency: label?.frequency.map { Markup.number($0 * 100, digits: 4) + "%" } ?? "–",
                frequencySort: String(label?.frequency ?? 0), maxActivation: view.maxActivation, href: pageName(index),
                search: "\(index) \(view.name) \(rules)".lowercased(), rules: rules))
        }
        let index = DashboardIndexView(pack: pack.name, hook: pack.hook.name, count: "\(latents.count)",
                                       total: "\(pack.sae?.dSAE ?? 0)",
                                       scan: pack.labels.scan.map { "\($0.tokens) \($0.split) tokens of \($0.corpora.joined(separator: ", "))" } ?? "no scan recorded",
                                       rows: rows)
        let html = try Page.render(name: "index", template: DashboardTemplate.index, view: index,
                                   style: DashboardTemplate.style, script: DashboardTemplate.indexScript)
        try Page.write(html, to: directory + "/index.html")
        return latents.count + 1
    }
}
