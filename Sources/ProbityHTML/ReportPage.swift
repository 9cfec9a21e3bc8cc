// `probity report html` and `probity audit --html`: one self-contained page per report. Styles,
// script and charts are inline; a Content-Security-Policy lets the page load nothing and run only
// its own script (by hash), so even text that slipped through as markup could not run or fetch.

import Foundation
import Mustache
import ProbityAudit
import ProbityFeatures

/// Renders audit reports as self-contained HTML pages.
public enum ReportPage {
    /// The page of `report`, to be written at `path` (relative links to rule files start from its
    /// directory; paths in the report are relative to `workingDirectory`, where the audit ran).
    public static func render(_ report: AuditReport, names: LatentNames = LatentNames(), path: String,
                              workingDirectory: String = FileManager.default.currentDirectoryPath) throws -> String {
        let view = ReportView(report, names: names, links: LinkBase(page: path, workingDirectory: workingDirectory))
        return try Page.render(name: "report", template: ReportTemplate.page, view: view,
                               style: ReportTemplate.style, script: ReportTemplate.script)
    }

    /// Names of the labelled latents of the report's SAE packs, read from each pack's directory
    /// (relative to `workingDirectory`) when it is there. A pack that is missing or is no longer
    /// the one the report ran with (its digest differs) contributes no names.
    public static func latentNames(for report: AuditReport,
                                   workingDirectory: String = FileManager.default.currentDirectoryPath) -> LatentNames {
        var out: [String: [Int: String]] = [:]
        for pack in report.packs {
            let dir = pack.path.hasPrefix("/") ? pack.path : workingDirectory + "/" + pack.path
            guard packDigest(directory: dir) == pack.sha256, let loaded = try? FeaturePack.load(path: dir),
                  loaded.kind == .sae else { continue }
            var names: [Int: String] = [:]
            loaded.labels.forEach { label in
                if let i = Int(label.id), let name = label.name { names[i] = name }
            }
            out[pack.name] = names
        }
        return LatentNames(out)
    }

    /// A pack directory's digest as audits record it: SHA-256 of the sorted lines `FILE SHA256`.
    static func packDigest(directory: String) -> String? {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return nil }
        var lines: [String] = []
        for name in names.sorted() {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory), !isDirectory.boolValue,
                  let digest = try? SHA256.hex(file: directory + "/" + name) else { continue }
            lines.append("\(name) \(digest)\n")
        }
        return SHA256.hex(Array(lines.joined().utf8))
    }
}

/// The page shell both kinds of page share: a template rendered with its view, style and script,
/// and a Content-Security-Policy that admits exactly that style and script.
enum Page {
    static func render<View>(name: String, template: String, view: View, style: String, script: String) throws -> String {
        let compiled: MustacheTemplate
        do { compiled = try MustacheTemplate(string: template) } catch {
            throw HTMLTemplateError(name: name, reason: "\(error)")
        }
        let csp = "default-src 'none'; script-src '\(Markup.cspHash(script))'; style-src '\(Markup.cspHash(style))'; "
            + "img-src data:; base-uri 'none'; form-action 'none'"
        return compiled.render(PageContext(csp: csp, style: style, script: script, view: view))
    }

    struct PageContext<View> {
        let csp: String
        let style: String
        let script: String
        let view: View
    }

    /// Writes `html` to `path` through a temporary file and a rename, creating its directory.
    static func write(_ html: String, to path: String) throws {
        let url = URL(fileURLWithPath: path)
        do {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try Data(html.utf8).write(to: url, options: .atomic)
        } catch {
            throw HTMLError.cannotWrite(path: path, reason: error.localizedDescription)
        }
    }
}

extension ReportPage {
    /// Renders `report` and writes it to `path`.
    public static func write(_ report: AuditReport, to path: String,
                             workingDirectory: String = FileManager.default.currentDirectoryPath) throws {
        let html = try render(report, names: latentNames(for: report, workingDirectory: workingDirectory), path: path,
                              workingDirectory: workingDirectory)
        try Page.write(html, to: path)
    }
}
