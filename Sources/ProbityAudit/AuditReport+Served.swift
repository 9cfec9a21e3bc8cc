// A served request as an audit report of one case (docs/serve.md, "Audit log"): the server's audit
// log holds one such report per line, so `probity report merge` joins a log's requests into one
// report and CI tooling that reads reports reads served traffic too.

import Foundation
import ProbityFeatures
import ProbityLM
import ProbityRules
import ProbityTensor

extension AuditReport {
    /// What every request of one server shares: its model, packs, rules and defaults.
    public struct ServedHeader: Sendable {
        public var probityVersion: String
        public var model: Model
        public var packs: [Pack]
        public var ruleFiles: [FileDigest]
        public var rules: [RuleInfo]
        /// The server's defaults: its `max_tokens`, fail-on severity and chat format.
        public var maxTokens: Int
        public var failOn: RuleSeverity
        public var chatFormat: String
        public var kvCache: KVCacheStorage
        public var activations: ActivationPrecision

        /// The header of a server running `loaded` (named `model` on its command line) with `rules`
        /// compiled from `ruleFiles`.
        public init(probityVersion: String, loaded: LoadedModel, model name: String, rules: AuditRuleSet, ruleFiles: [String],
                    maxTokens: Int, failOn: RuleSeverity, chatFormat: String) throws {
            self.probityVersion = probityVersion
            model = try Model(loaded, loadedFrom: name)
            packs = rules.packDigests
            self.ruleFiles = try FileDigest.of(ruleFiles.map(AuditSuite.normalize))
            self.rules = rules.infos
            self.maxTokens = maxTokens
            self.failOn = failOn
            self.chatFormat = chatFormat
            kvCache = loaded.model.kvCache
            activations = loaded.model.activations
        }

        /// The suite a served request belongs to: `serve`, digested over the server's model, rules
        /// and packs, so logs of one configuration merge and others do not.
        var suite: Suite {
            let lines = ([model.sha256] + ruleFiles.map { "\($0.path) \($0.sha256)" } + packs.map { "\($0.name) \($0.sha256)" })
                .joined(separator: "\n")
            return Suite(name: "serve", path: "serve", sha256: SHA256.hex(Array(lines.utf8)), cases: 1)
        }
    }

    /// One served request: case `id` (the response's id) at `index` (unique within a log: the
    /// request's start in milliseconds since 1970 times 1000 plus a counter), its rendered prompt and
    /// the generation, with the request's rules and steering, as the case's `baseline` run (a served
    /// request has one run: there is no unsteered twin to compare with). The verdict is at the
    /// server's `fail_on`, so that a log's lines merge whatever each request asked (the request's own
    /// verdict is in its response).
    public init(served header: ServedHeader, id: String, index: Int, prompt: String, promptTokens: Int, run: Run,
                startedAt: Date, finishedAt: Date) {
        let failOn = header.failOn
        let c = Case(id: id, index: index, prompt: prompt, promptTokens: promptTokens, location: "serve", baseline: run,
                     steered: nil, effects: nil, expectations: [], expectationsPassed: true)
        let rules = header.rules.map { r in
            Rule(id: r.id, severity: r.severity, description: r.description, file: r.file, line: r.line, intervenes: r.intervenes,
                 validity: r.validity.map { Validity(auroc: $0.auroc, tpr: $0.tpr, fpr: $0.fpr, benignFPR: $0.benignFPR,
                                                     data: $0.data, n: $0.n) },
                 calibration: nil)
        }
        let seconds = finishedAt.timeIntervalSince(startedAt)
        let formatter = ISO8601DateFormatter()
        self.init(schemaVersion: Self.schemaVersion, probityVersion: header.probityVersion, complete: true,
                  startedAt: formatter.string(from: startedAt), finishedAt: formatter.string(from: finishedAt),
                  model: header.model, packs: header.packs, ruleFiles: header.ruleFiles, rules: rules, suite: header.suite,
                  settings: Settings(maxTokens: header.maxTokens, temperature: 1, topP: 1, seed: 0, chatFormat: header.chatFormat,
                                     failOn: failOn, shard: Shard(index: 1, count: 1),
                                     kvCache: header.kvCache == .f32 ? nil : header.kvCache,
                                     activations: header.activations == .f32 ? nil : header.activations),
                  timings: Timings(totalSeconds: seconds, cases: [id: seconds]),
                  summary: Summary(cases: [c], rules: rules.map { ($0.id, $0.severity) }, failOn: failOn, complete: true,
                                   reconstruction: []),
                  cases: [c])
    }
}
