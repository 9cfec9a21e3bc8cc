// Running a whole suite: load it, the model and the rules, run the cases of one shard, and build
// the report. The CLI (`probity audit`) only adds files, progress and exit codes around this.

import Foundation
import ProbityFeatures
import ProbityFormats
import ProbityLM
import ProbityRules
import ProbityTensor

/// Where a suite run stands, for a progress display.
public struct AuditProgress: Sendable, Equatable {
    /// Cases finished, and the cases of this shard.
    public var done: Int, total: Int
    /// The case about to run; nil once the run has ended.
    public var caseID: String?
    /// Tokens generated so far, baseline and steered runs together.
    public var tokens: Int
    /// Seconds since the first case began.
    public var seconds: Double
    /// True while the suite's `calibrate:` requests run, before the cases: then `done` and `total`
    /// count calibration requests, and `caseID` is the one about to run.
    public var calibrating = false

    public var tokensPerSecond: Double { seconds > 0 ? Double(tokens) / seconds : 0 }
    /// The seconds the remaining cases will take at the pace so far; nil before a case has finished.
    public var etaSeconds: Double? { done > 0 ? seconds / Double(done) * Double(total - done) : nil }
}

/// A suite run from start to report.
public enum Audit {
    /// Parses `I/N` (1 ≤ I ≤ N).
    public static func shard(_ text: String) throws -> (index: Int, count: Int) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, let i = Int(parts[0]), let n = Int(parts[1]), n >= 1, i >= 1, i <= n else {
            throw AuditError.badShard(text)
        }
        return (i, n)
    }

    /// Cases in flight at once when a run does not say (`--batch-size`), for this machine:
    /// `defaultBatchSize(cores:memory:)` of its active cores and physical memory.
    public static let defaultBatchSize = defaultBatchSize(cores: ProcessInfo.processInfo.activeProcessorCount,
                                                          memory: ProcessInfo.processInfo.physicalMemory)

    /// What one case in flight may cost in memory, for `defaultBatchSize(cores:memory:)`: the default
    /// model's cost 50–70 MB each (300 MB at 1 case, 500 MB at 4, 600 MB at 8), so this leaves room.
    public static let memoryPerCase: UInt64 = 100 << 20

    /// The default batch size on a machine with `cores` cores and `memory` bytes of physical memory:
    /// two cases per core (each decodes two sequences, so four share every weight read on each
    /// core; on 2 cores 4, 8 and 16 cases ran equally fast), at least 2 and at most 16, and no more
    /// than a quarter of `memory` holds at `memoryPerCase` each (at least 1). Reports do not depend
    /// on it: they are the same at every batch size (docs/BENCHMARKS.md, "Batched cases and shared
    /// prompts").
    public static func defaultBatchSize(cores: Int, memory: UInt64) -> Int {
        let byCores = min(16, max(2, 2 * cores))
        let byMemory = Int(clamping: memory / 4 / memoryPerCase)
        return max(1, min(byCores, byMemory))
    }

    /// The case indices of shard `i` of `n`: every n-th case, starting with case i − 1.
    public static func indices(cases: Int, shard: (index: Int, count: Int)) -> [Int] {
        Array(stride(from: shard.index - 1, to: cases, by: shard.count))
    }

    /// Which LoRA adapters a run applies: the suite's own (unless `dropSuiteAdapters`, the CLI's
    /// `--no-lora`), then `extra` (`--lora`), in that order.
    public struct AdapterChoice: Sendable {
        public var dropSuiteAdapters: Bool
        public var extra: [AdapterRequest]

        public init(dropSuiteAdapters: Bool = false, extra: [AdapterRequest] = []) {
            self.dropSuiteAdapters = dropSuiteAdapters
            self.extra = extra
        }

        /// The adapters to apply on top of `suite`'s model.
        public func adapters(for suite: AuditSuite) -> [AdapterRequest] {
            (dropSuiteAdapters ? [] : suite.adapters) + extra
        }
    }

    /// Runs the suite at `path` and returns its report. `progress` is called before each case and
    /// once at the end; `interrupted` is polled between tokens. `kvCache` is how the model's KV
    /// caches store keys and values and `activations` how decode's products take their input (the
    /// report's settings name a non-default choice of either).
    ///
    /// `model` (the CLI's `--model`) runs the suite on another model than its own: with the rule
    /// files the suite's `models:` names for it, else with its `rules`; the suite's LoRA adapters
    /// belong to its own model and are dropped. Expectations on rules that another model's rule
    /// files do not define are not checked there; `notChecked` receives them before the cases run.
    public static func run(suitePath: String, version: String, failOn: RuleSeverity, shard: (index: Int, count: Int),
                           model override: String? = nil, notChecked: ([AuditExpectation]) -> Void = { _ in },
                           threads: Int? = nil, batchSize: Int? = nil, adapters choice: AdapterChoice = AdapterChoice(),
                           kvCache: KVCacheStorage = .f32, activations: ActivationPrecision = .f32,
                           interrupted: @escaping () -> Bool,
                           progress: (AuditProgress) -> Void) throws -> AuditReport {
        let started = Date()
        var suite = try AuditSuite.load(path: suitePath)
        let other = override.flatMap { $0 == suite.model ? nil : suite.otherModel($0) }
        if let override, override != suite.model {
            suite.model = override
            suite.adapters = []
        }
        if let other {
            suite.ruleFiles = other.ruleFiles
            if let format = other.chatFormat { suite.settings.chatFormat = format }
        }
        let loaded = try LoadedModel.load(suite.model, threads: threads, adapters: choice.adapters(for: suite),
                                          kvCache: kvCache, activations: activations)
        let rules = try AuditRuleSet(files: suite.ruleFiles, model: loaded)
        let known = Set(rules.infos.map(\.id))
        let unknown = suite.expectationsNotApplicable(to: known)
        if other != nil {
            for i in suite.cases.indices { suite.cases[i].expectations.removeAll { !known.contains($0.rule) } }
            if !unknown.isEmpty { notChecked(unknown) }
        } else if let e = unknown.first {
            throw AuditError.unknownRule(e.location, id: e.rule, known: known.sorted())
        }
        var runner = AuditRunner(loaded: loaded, rules: rules, settings: suite.settings)
        var ruleSet = rules
        let mine = indices(cases: suite.cases.count, shard: shard)
        var results: [CaseResult] = []
        var complete = true
        if let calibration = suite.calibration {
            // Every shard calibrates alike (same model, requests and settings), so shards merge.
            let started = Date()
            var done = 0
            let chosen = try calibrate(calibration, rules: rules, runner: runner, width: batchSize ?? defaultBatchSize,
                                       interrupted: interrupted) { id in
                progress(AuditProgress(done: done, total: calibration.cases.count, caseID: id, tokens: 0,
                                       seconds: Date().timeIntervalSince(started), calibrating: true))
                done += 1
            }
            if let chosen {
                ruleSet = rules.calibrated(chosen)
                runner = AuditRunner(loaded: loaded, rules: ruleSet, settings: suite.settings)
            } else {
                complete = false  // interrupted before any case: an incomplete report without cases
            }
        }
        let casesStarted = Date()
        var tokens = 0
        func report(_ id: String?, done: Int? = nil) {
            progress(AuditProgress(done: done ?? results.count, total: mine.count, caseID: id, tokens: tokens,
                                   seconds: Date().timeIntervalSince(casesStarted)))
        }
        let width = batchSize ?? defaultBatchSize
        if width == 1 {
            // The sequential path: one case at a time, each run with its own pass of the prompt.
            for i in mine where complete {
                if interrupted() { complete = false; break }
                report(suite.cases[i].id)
                guard let r = try runner.run(suite.cases[i], index: i, interrupted: interrupted) else { complete = false; break }
                results.append(r)
                tokens += r.baseline.tokens.count + (r.steered?.tokens.count ?? 0)
            }
        } else if complete {
            // Cases start as others finish; progress counts those started before each.
            var begun = 0
            // Tokens count as their cases finish, so the rate the progress line shows is the run's so far.
            let run = try runner.run(mine.map { (suite.cases[$0], $0) }, width: width, interrupted: interrupted, started: { c in
                report(c.id, done: begun)
                begun += 1
            }, finishedCase: { r in
                tokens += r.baseline.tokens.count + (r.steered?.tokens.count ?? 0)
            })
            results = run.results
            tokens = results.reduce(0) { $0 + $1.baseline.tokens.count + ($1.steered?.tokens.count ?? 0) }
            complete = run.complete
        }
        report(nil)
        let header = AuditReport.Header(
            probityVersion: version, suite: suite, suiteSHA256: try SHA256.hex(file: suitePath),
            model: try AuditReport.Model(loaded, loadedFrom: suite.model), packs: rules.packDigests,
            ruleFiles: try AuditReport.FileDigest.of(suite.ruleFiles),
            failOn: failOn, shard: AuditReport.Shard(index: shard.index, count: shard.count), kvCache: kvCache,
            activations: activations)
        let tokenizer = loaded.tokenizer
        return AuditReport(header: header, rules: ruleSet.infos, results: results, complete: complete,
                           startedAt: started, finishedAt: Date(),
                           tokenizer: { (try? tokenizer.piece($0)) ?? "" })
    }

    /// The model file's SHA-256, cached next to it as `FILE.sha256` (scripts/setup writes that file
    /// too) when the cache is at least as new as the model.
    static func modelDigest(_ path: String) throws -> String {
        let cache = path + ".sha256"
        let fm = FileManager.default
        if let text = fm.contents(atPath: cache).map({ String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) }),
           text.count == 64,
           let m = (try? fm.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
           let c = (try? fm.attributesOfItem(atPath: cache))?[.modificationDate] as? Date, c >= m {
            return text
        }
        return try SHA256.hex(file: path)
    }
}
