// How much of the activations an SAE pack's reconstruction leaves unexplained, as reports show it
// (docs/audits.md "Reconstruction"): per run and per audit the FVU of a set of positions, centred
// on their own mean; the summary keeps that mean, so shard reports join into the FVU of their union.

import Foundation
import ProbityFeatures

extension AuditReport.FVU {
    /// A run's sums as the report shows them.
    init(_ t: ReconstructionTally) {
        self.init(positions: t.count, squaredError: t.squaredError, totalVariance: t.totalVariance, fvu: t.fvu)
    }
}

extension AuditReport.PooledFVU {
    /// Pooled sums as the report shows them.
    init(_ t: ReconstructionTally) {
        self.init(positions: t.count, squaredError: t.squaredError, totalVariance: t.totalVariance, fvu: t.fvu, mean: t.mean)
    }

    /// The running sums again; nil when the recorded ones cannot describe a set of positions.
    var tally: ReconstructionTally? {
        ReconstructionTally(count: positions, squaredError: squaredError, totalVariance: totalVariance, mean: mean)
    }
}

extension AuditReport.Reconstruction {
    init(_ t: PackTally) {
        self.init(pack: t.pack, prompt: AuditReport.FVU(t.prompt), response: AuditReport.FVU(t.response))
    }
}

extension AuditReport {
    /// Per SAE pack (in order of first appearance), its tallies joined over `runs`.
    static func pooled(_ runs: [[PackTally]]) -> [PooledReconstruction] {
        var order: [String] = []
        var joined: [String: (prompt: ReconstructionTally, response: ReconstructionTally)] = [:]
        for run in runs {
            for t in run {
                if joined[t.pack] == nil { order.append(t.pack); joined[t.pack] = (ReconstructionTally(), ReconstructionTally()) }
                joined[t.pack]?.prompt.merge(t.prompt)
                joined[t.pack]?.response.merge(t.response)
            }
        }
        return order.compactMap { pack in
            joined[pack].map { PooledReconstruction(pack: pack, prompt: PooledFVU($0.prompt), response: PooledFVU($0.response)) }
        }
    }

    /// The pooled sums of several reports' summaries, joined per pack. Throws `badMerge` naming the
    /// first report whose sums cannot describe a set of positions or whose means have another width.
    static func joinPooled(_ summaries: [(path: String, pooled: [PooledReconstruction])]) throws -> [PooledReconstruction] {
        var runs: [[PackTally]] = []
        var width: Int?
        for (path, pooled) in summaries {
            var run: [PackTally] = []
            for p in pooled {
                guard let prompt = p.prompt.tally, let response = p.response.tally else {
                    throw AuditError.badMerge(path: path, reason: "the summary's reconstruction sums for pack '\(p.pack)' are not valid")
                }
                for t in [prompt, response] where t.count > 0 {
                    if width == nil { width = t.mean.count }
                    guard t.mean.count == width else {
                        throw AuditError.badMerge(path: path, reason: "pack '\(p.pack)' has a mean of width \(t.mean.count), not \(width ?? 0)")
                    }
                }
                run.append(PackTally(pack: p.pack, prompt: prompt, response: response))
            }
            runs.append(run)
        }
        return pooled(runs)
    }

    /// Where a summary's pooled sums cannot describe a set of positions (a negative sum, a mean
    /// missing or present without positions, means of different widths), as a key path.
    func invalidReconstruction() -> String? {
        var width: Int?
        for (i, p) in summary.reconstruction.enumerated() {
            for (scope, f) in [("prompt", p.prompt), ("response", p.response)] {
                let key = "summary.reconstruction[\(i)].\(scope)"
                guard let t = f.tally else { return key }
                if t.count > 0 {
                    if width == nil { width = t.mean.count }
                    if t.mean.count != width { return key + ".mean" }
                }
            }
        }
        return nil
    }
}
