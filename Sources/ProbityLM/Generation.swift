// The one generation loop: prefill the prompt, then sample one token per decode step, streaming
// text as complete UTF-8 and stopping at EOS, a stop string, max_tokens, the caller's stop
// predicate or an interruption. Hooks run at every step, prefill and decode alike, so steering is
// consistent under the cache. `probity generate`, `steer`, `rules test` and audits all use it.

import Foundation
import ProbityTensor

/// Settings for one generation.
public struct GenerationOptions: Sendable, Equatable {
    public var maxTokens: Int = 256
    public var sampling = SamplingOptions()
    public var stopStrings: [String] = []
    /// Stop when the model emits its end-of-sequence token.
    public var stopAtEOS = true
    /// Keep the logits each generated token was sampled from (`GenerationResult.logits`): one
    /// vocabulary-sized row per token, so only for callers that read them (an audit's steered run).
    public var keepLogits = false

    public init(maxTokens: Int = 256, sampling: SamplingOptions = SamplingOptions(),
                stopStrings: [String] = [], stopAtEOS: Bool = true, keepLogits: Bool = false) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
        self.stopAtEOS = stopAtEOS
        self.keepLogits = keepLogits
    }
}

/// Why generation ended.
public enum FinishReason: String, Sendable, Codable {
    /// The end-of-sequence token.
    case eos
    /// A stop string.
    case stop
    /// max_tokens or the context's end.
    case length
    /// The caller's `shouldStop` said so after a forward step (a rule with `stop: true`, say).
    case halted
    /// The caller's `interrupted` said so between tokens; the result holds what came before.
    case interrupted
}

/// What a generation produced, with its timings.
public struct GenerationResult: Sendable {
    public var promptTokens: [Int]
    /// Generated tokens, including a stop string's tokens but not EOS.
    public var tokens: [Int]
    /// Generated text, cut before a matched stop string.
    public var text: String
    public var finishReason: FinishReason
    /// Per generated token, the logits it was sampled from; empty unless `keepLogits` asked.
    public var logits: [[Float]]
    /// Positions the model ran: the prompt and every generated token fed back (the last one
    /// generated is not, as nothing follows it).
    public var positions: Int
    public var prefillSeconds: Double
    public var decodeSeconds: Double
}

/// Generates text with a model and its tokenizer.
public struct Generator {
    public let model: any LanguageModel
    public let tokenizer: Tokenizer

    public init(model: any LanguageModel, tokenizer: Tokenizer) {
        self.model = model
        self.tokenizer = tokenizer
    }

    /// Generates from `prompt` (token ids). `onText` receives text as it completes.
    /// - Parameter hooks: attached for the prompt and every decode step.
    /// - Parameter shouldStop: asked after every forward step, the prompt's and each generated
    ///   token's; true ends generation with `FinishReason.halted` (a rule with `stop: true`
    ///   that fired, say), before another token is sampled.
    /// - Parameter interrupted: asked before each token is sampled; true ends generation with
    ///   `FinishReason.interrupted` (a user's Ctrl-C, say).
    /// `promptSplit`, when given (from `PromptSplit.point`), runs the prompt as two calls, the
    /// positions before it and the rest, as one step: what a run that forks a shared prefix there does.
    public func generate(prompt: [Int], options: GenerationOptions, hooks: HookSet? = nil,
                         promptSplit: Int? = nil,
                         onText: (String) -> Void = { _ in },
                         shouldStop: () -> Bool = { false },
                         interrupted: () -> Bool = { false }) throws -> GenerationResult {
        guard !prompt.isEmpty else { throw GenerationError.emptyPrompt }
        guard options.maxTokens >= 0 else { throw GenerationError.badMaxTokens(options.maxTokens) }
        let needed = prompt.count + options.maxTokens
        guard prompt.count <= model.info.contextLength else {
            throw ModelError.contextOverflow(needed: prompt.count, capacity: model.info.contextLength)
        }
        let session = try model.makeSession(capacity: min(needed, model.info.contextLength))
        let clock = ContinuousClock()
        let t0 = clock.now
        var logits = try session.forward(prompt, hooks: hooks, split: promptSplit)
        let t1 = clock.now
        var stream = try GenerationStream(prompt: prompt, options: options, tokenizer: tokenizer, halted: shouldStop())
        while let token = try stream.next(logits: logits, hasRoom: session.length < session.capacity,
                                          interrupted: interrupted, onText: onText) {
            logits = try session.forward([token], origins: [.generated], hooks: hooks, logits: .last)
            stream.stepped(halted: shouldStop())
        }
        let t2 = clock.now
        return stream.finish(positions: session.length, prefillSeconds: (t1 - t0).seconds,
                             decodeSeconds: (t2 - t1).seconds, onText: onText)
    }
}

/// One generation between forward steps: sampling, end-of-sequence, stop strings, streamed text and
/// why it ended. `Generator` drives one with its own session; `BatchGenerator` drives many whose
/// decode steps run together. Whoever drives it runs the model; the stream decides.
public struct GenerationStream {
    public let prompt: [Int]
    public let options: GenerationOptions
    private let eos: Int?
    private var sampler: Sampler
    private var detok: StreamingDetokenizer
    private var stops: StopStringMatcher
    public private(set) var tokens: [Int] = []
    private var kept: [[Float]] = []
    private var text = ""
    private var reason = FinishReason.length
    /// Whether the stream has ended (`next` returned nil).
    public private(set) var finished = false

    /// A stream whose prompt has just run; `halted` is the caller's stop predicate after it.
    public init(prompt: [Int], options: GenerationOptions, tokenizer: Tokenizer, halted: Bool) throws {
        self.prompt = prompt
        self.options = options
        eos = tokenizer.eosID
        sampler = try Sampler(options.sampling)
        detok = StreamingDetokenizer(tokenizer: tokenizer)
        stops = try StopStringMatcher(options.stopStrings)
        if halted { reason = .halted }
    }

    /// Samples the next token from `logits` (the last position run), streams its text, and returns
    /// it if the model must run it next; nil when the stream has ended. `hasRoom`: whether the
    /// session can hold another position. `interrupted` is asked before sampling.
    public mutating func next(logits: [Float], hasRoom: Bool, interrupted: () -> Bool,
                              onText: (String) -> Void = { _ in }) throws -> Int? {
        guard !finished, reason == .length, tokens.count < options.maxTokens else { return end() }
        if interrupted() { reason = .interrupted; return end() }
        let token = logits.withUnsafeBufferPointer { sampler.sample($0) }
        if options.stopAtEOS, token == eos { reason = .eos; return end() }
        if options.keepLogits { kept.append(logits) }
        tokens.append(token)
        let piece = try detok.append(token)
        let (emit, stopped) = stops.feed(piece)
        text += emit
        onText(emit)
        if stopped { reason = .stop; return end() }
        // The last token is not run: nothing would read its logits.
        if tokens.count == options.maxTokens || !hasRoom { return end() }
        return token
    }

    /// After the model ran the token `next` returned: `halted` is the caller's stop predicate.
    public mutating func stepped(halted: Bool) {
        if halted { reason = .halted }
    }

    private mutating func end() -> Int? {
        finished = true
        return nil
    }

    /// The result, once `next` has returned nil; `positions` is what the session ran.
    public mutating func finish(positions: Int, prefillSeconds: Double, decodeSeconds: Double,
                                onText: (String) -> Void = { _ in }) -> GenerationResult {
        if reason != .stop {
            // Bytes held back for an incomplete character or a possible stop string's start.
            let (emit, _) = stops.feed(detok.flush())
            let rest = emit + stops.finish()
            text += rest
            onText(rest)
        }
        return GenerationResult(promptTokens: prompt, tokens: tokens, text: text, finishReason: reason,
                                logits: kept, positions: positions,
                                prefillSeconds: prefillSeconds, decodeSeconds: decodeSeconds)
    }
}

extension Duration {
    /// This duration in seconds as a Double.
    public var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}
