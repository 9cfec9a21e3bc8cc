// The audit runner: for each case a baseline run with detection only, a steered run with the
// rules' interventions, and the interventions' effects measured by one teacher-forced pass of the
// steered tokens without interventions (KL(baseline ‖ steered) per position, top-1 changes).

import Foundation
import ProbityFeatures
import ProbityLM
import ProbityRules

/// One generation with the rules attached.
public struct RunResult: Sendable {
    public var tokens: [Int]
    public var text: String
    public var finishReason: String
    public var outcomes: [RuleOutcome]
    public var applications: [String: Int]
    /// Per generated token, the logits it was sampled from (kept only for the steered run).
    public var logits: [[Float]]
    public var features: [Int: [(pack: String, fvu: Double, top: [ActiveLatentSummary])]]
}

/// An SAE latent and its activation, as reports show them.
public struct ActiveLatentSummary: Sendable, Equatable {
    public var index: Int
    public var activation: Double
}

/// The effect of the interventions along the steered token path.
public struct InterventionEffects: Sendable {
    /// KL(baseline ‖ steered) in nats at each generated position of the steered path.
    public var kl: [Double]
    /// Fraction of those positions whose most likely token differs.
    public var top1ChangedFraction: Double
}

/// Everything measured for one case.
public struct CaseResult: Sendable {
    public var index: Int
    public var auditCase: AuditCase
    public var prompt: String
    public var promptTokens: [Int]
    public var baseline: RunResult
    public var steered: RunResult?
    public var effects: InterventionEffects?
    public var seconds: Double
}

/// Runs a suite's cases on a loaded model with compiled rules.
public struct AuditRunner {
    public let loaded: LoadedModel
    public let rules: any AuditRules
    public let settings: AuditSettings

    public init(loaded: LoadedModel, rules: any AuditRules, settings: AuditSettings) {
        self.loaded = loaded
        self.rules = rules
        self.settings = settings
    }

    /// The prompt text and tokens of a case.
    public func prompt(for c: AuditCase) throws -> (String, [Int], stops: [String]) {
        switch c.input {
        case .text(let t):
            return (t, loaded.tokenizer.encode(t, addSpecial: true, parseSpecial: true), [])
        case .messages(let messages):
            let format = try ChatTemplate.format(for: loaded.file, override: settings.chatFormat == "auto" ? nil : settings.chatFormat)
            let text = try format.render(messages, addGenerationPrompt: true)
            return (text, loaded.tokenizer.encode(text, addSpecial: true, parseSpecial: true), [format.endOfTurn])
        }
    }

    /// Runs one case. `interrupted` is polled between tokens; when it returns true the case is
    /// abandoned (nil).
    public func run(_ c: AuditCase, index: Int, interrupted: () -> Bool) throws -> CaseResult? {
        let clock = ContinuousClock()
        let t0 = clock.now
        let (text, tokens, stops) = try prompt(for: c)
        guard let baseline = try generate(tokens, stops: stops, steer: false, interrupted: interrupted) else { return nil }
        var steered: RunResult?
        var effects: InterventionEffects?
        if rules.infos.contains(where: \.intervenes) {
            guard let s = try generate(tokens, stops: stops, steer: true, interrupted: interrupted) else { return nil }
            steered = s
            effects = try measure(prompt: tokens, steered: s)
        }
        return CaseResult(index: index, auditCase: c, prompt: text, promptTokens: tokens, baseline: baseline, steered: steered,
                          effects: effects, seconds: (clock.now - t0).seconds)
    }

    func generate(_ prompt: [Int], stops: [String], steer: Bool, interrupted: () -> Bool) throws -> RunResult? {
        let model = loaded.model
        guard prompt.count < model.info.contextLength else {
            throw ModelError.contextOverflow(needed: prompt.count + 1, capacity: model.info.contextLength)
        }
        let recorder = try rules.instrument(model: model.info, steer: steer)
        let hooks = recorder.hooks
        let session = try model.makeSession(capacity: min(prompt.count + settings.maxTokens, model.info.contextLength))
        var sampler = try Sampler(SamplingOptions(temperature: Float(settings.temperature), topP: Float(settings.topP), seed: settings.seed))
        var detok = StreamingDetokenizer(tokenizer: loaded.tokenizer)
        var matcher = try StopStringMatcher(stops)
        var generated: [Int] = []
        var kept: [[Float]] = []
        var text = ""
        var reason = "length"
        var logits = try session.forward(prompt, origins: nil, hooks: hooks, logits: .last)
        var stopped = recorder.shouldStop
        if stopped { reason = "rule" }
        while !stopped && generated.count < settings.maxTokens {
            if interrupted() { return nil }
            let token = logits.withUnsafeBufferPointer { sampler.sample($0) }
            if token == loaded.tokenizer.eosID { reason = "eos"; break }
            if steer { kept.append(logits) }
            generated.append(token)
            let (emit, hitStop) = matcher.feed(try detok.append(token))
            text += emit
            if hitStop { reason = "stop"; break }
            if generated.count == settings.maxTokens || session.length >= session.capacity { break }
            logits = try session.forward([token], origins: [.generated], hooks: hooks, logits: .last)
            if recorder.shouldStop { stopped = true; reason = "rule" }
        }
        if reason != "stop" {
            let (emit, _) = matcher.feed(detok.flush())
            text += emit + matcher.finish()
        }
        // Positions evaluated: every token that went through the model.
        let length = session.length
        let features = recorder.featureRecords.mapValues { rows in
            rows.map { (pack: $0.pack, fvu: $0.fvu, top: $0.top.map { ActiveLatentSummary(index: $0.index, activation: Double($0.activation)) }) }
        }
        return RunResult(tokens: generated, text: text, finishReason: reason,
                         outcomes: recorder.evaluate(length: length),
                         applications: recorder.applications, logits: kept, features: features)
    }

    /// KL(baseline ‖ steered) and top-1 changes along the steered path: the baseline distributions
    /// come from one teacher-forced pass of prompt + steered tokens without interventions.
    func measure(prompt: [Int], steered: RunResult) throws -> InterventionEffects {
        let m = steered.logits.count
        guard m > 0 else { return InterventionEffects(kl: [], top1ChangedFraction: 0) }
        let path = prompt + steered.tokens.prefix(m - 1)
        let session = try loaded.model.makeSession(capacity: path.count)
        let all = try session.forward(path, hooks: nil, logits: .all)
        let vocab = all.count / path.count
        var kl: [Double] = []
        var changed = 0
        for j in 0..<m {
            let row = prompt.count - 1 + j
            let base = Array(all[(row * vocab)..<((row + 1) * vocab)])
            let steer = steered.logits[j]
            guard steer.count == vocab else { continue }
            let p = Self.logSoftmax(base), q = Self.logSoftmax(steer)
            var d = 0.0
            for i in 0..<vocab where p[i] > -80 { d += exp(p[i]) * (p[i] - q[i]) }
            kl.append(max(0, d))
            if Self.argmax(base) != Self.argmax(steer) { changed += 1 }
        }
        return InterventionEffects(kl: kl, top1ChangedFraction: kl.isEmpty ? 0 : Double(changed) / Double(kl.count))
    }

    static func logSoftmax(_ x: [Float]) -> [Double] {
        let m = Double(x.max() ?? 0)
        let lse = log(x.reduce(0.0) { $0 + exp(Double($1) - m) }) + m
        return x.map { Double($0) - lse }
    }

    static func argmax(_ x: [Float]) -> Int {
        var best = 0
        for i in x.indices where x[i] > x[best] { best = i }
        return best
    }
}
