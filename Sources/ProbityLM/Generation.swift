// Text generation over a session: prefill the prompt, then sample one token per decode step,
// streaming text as complete UTF-8 and stopping at EOS, a stop string, or max_tokens.
// Hooks run at every step, prefill and decode alike, so steering is consistent under the cache.

import Foundation
import ProbityTensor

/// Settings for one generation.
public struct GenerationOptions: Sendable, Equatable {
    public var maxTokens: Int = 256
    public var sampling = SamplingOptions()
    public var stopStrings: [String] = []
    /// Stop when the model emits its end-of-sequence token.
    public var stopAtEOS = true

    public init(maxTokens: Int = 256, sampling: SamplingOptions = SamplingOptions(),
                stopStrings: [String] = [], stopAtEOS: Bool = true) {
        self.maxTokens = maxTokens
        self.sampling = sampling
        self.stopStrings = stopStrings
        self.stopAtEOS = stopAtEOS
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
    /// The caller's `shouldStop` said so.
    case halted
}

/// What a generation produced, with its timings.
public struct GenerationResult: Sendable {
    public var promptTokens: [Int]
    /// Generated tokens, including a stop string's tokens but not EOS.
    public var tokens: [Int]
    /// Generated text, cut before a matched stop string.
    public var text: String
    public var finishReason: FinishReason
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
    /// - Parameter shouldStop: asked after each step (prefill and every decode step); returning
    ///   true ends generation with `FinishReason.halted` (a rule with `stop: true`, say).
    public func generate(prompt: [Int], options: GenerationOptions, hooks: HookSet? = nil,
                         onText: (String) -> Void = { _ in },
                         shouldStop: () -> Bool = { false }) throws -> GenerationResult {
        guard !prompt.isEmpty else { throw GenerationError.emptyPrompt }
        guard options.maxTokens >= 0 else { throw GenerationError.badMaxTokens(options.maxTokens) }
        let needed = prompt.count + options.maxTokens
        guard prompt.count <= model.info.contextLength else {
            throw ModelError.contextOverflow(needed: prompt.count, capacity: model.info.contextLength)
        }
        let session = try model.makeSession(capacity: min(needed, model.info.contextLength))
        var sampler = try Sampler(options.sampling)
        var detok = StreamingDetokenizer(tokenizer: tokenizer)
        var stops = try StopStringMatcher(options.stopStrings)
        var generated: [Int] = []
        var text = ""
        var reason = FinishReason.length

        let clock = ContinuousClock()
        let t0 = clock.now
        var logits = try session.forward(prompt, origins: nil, hooks: hooks, logits: .last)
        let t1 = clock.now

        decode: while generated.count < options.maxTokens {
            if shouldStop() { reason = .halted; break }
            let token = logits.withUnsafeBufferPointer { sampler.sample($0) }
            if options.stopAtEOS, token == tokenizer.eosID {
                reason = .eos
                break
            }
            generated.append(token)
            let piece = try detok.append(token)
            let (emit, stopped) = stops.feed(piece)
            text += emit
            onText(emit)
            if stopped { reason = .stop; break decode }
            if generated.count == options.maxTokens || session.length >= session.capacity { break }
            logits = try session.forward([token], origins: [.generated], hooks: hooks, logits: .last)
        }
        if reason != .stop {
            let (emit, _) = stops.feed(detok.flush())
            let rest = emit + stops.finish()
            text += rest
            onText(rest)
        }
        let t2 = clock.now
        return GenerationResult(promptTokens: prompt, tokens: generated, text: text, finishReason: reason,
                                prefillSeconds: (t1 - t0).seconds, decodeSeconds: (t2 - t1).seconds)
    }
}

extension Duration {
    /// This duration in seconds as a Double.
    public var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}
