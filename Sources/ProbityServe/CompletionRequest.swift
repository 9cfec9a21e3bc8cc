// A completion request as the engine takes it, whatever the wire: a chat or a plain text prompt,
// sampling settings, and the `probity` options. `ServeEngine.prepare` checks it against the model,
// its rules and packs; every problem is a `ServeError` that names the request field at fault.

import ProbityLM
import ProbityRules

/// One request for a completion.
public struct CompletionRequest: Sendable {
    public enum Input: Sendable, Equatable {
        /// A conversation, rendered with the model's chat template and its generation prompt.
        case chat([ChatMessage])
        /// A text prompt, tokenized as text (no special tokens parsed from it).
        case text(String)
    }

    public var input: Input
    /// nil: the server's default.
    public var maxTokens: Int?
    public var temperature: Double
    public var topP: Double
    /// nil: a fresh random seed.
    public var seed: UInt64?
    public var stop: [String]
    public var probity: ProbityRequestOptions?

    public init(input: Input, maxTokens: Int? = nil, temperature: Double = 1, topP: Double = 1, seed: UInt64? = nil,
                stop: [String] = [], probity: ProbityRequestOptions? = nil) {
        self.input = input
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.topP = topP
        self.seed = seed
        self.stop = stop
        self.probity = probity
    }
}

/// What went wrong with a request, with the field at fault (`param`, as OpenAI's error objects name
/// it) and the HTTP status it calls for.
public enum ServeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// A value the request may not hold.
    case invalid(String, param: String?)
    /// The prompt and `max_tokens` do not fit the model's context.
    case contextLength(needed: Int, capacity: Int, param: String)
    /// The queue of waiting requests is full.
    case queueFull(limit: Int)
    /// The server is shutting down and takes no new requests.
    case shuttingDown
    /// The engine failed while running the request.
    case failed(String)

    public var description: String {
        switch self {
        case .invalid(let m, _): return m
        case let .contextLength(needed, capacity, _):
            return "this model's context holds \(capacity) tokens, but the request needs \(needed) (prompt and max_tokens); shorten the prompt or lower max_tokens"
        case .queueFull(let limit): return "the server is busy: \(limit) requests are already waiting; retry later"
        case .shuttingDown: return "the server is shutting down"
        case .failed(let m): return "the model failed: \(m)"
        }
    }

    /// The request field at fault.
    public var param: String? {
        switch self {
        case .invalid(_, let p): return p
        case .contextLength(_, _, let p): return p
        case .queueFull, .shuttingDown, .failed: return nil
        }
    }

    /// The HTTP status: 400 for a bad request, 429 when busy, 503 when shutting down, 500 on failure.
    public var status: Int {
        switch self {
        case .invalid, .contextLength: return 400
        case .queueFull: return 429
        case .shuttingDown: return 503
        case .failed: return 500
        }
    }

    /// OpenAI's error `type`.
    public var type: String {
        switch self {
        case .invalid, .contextLength: return "invalid_request_error"
        case .queueFull: return "rate_limit_exceeded"
        case .shuttingDown: return "server_unavailable"
        case .failed: return "server_error"
        }
    }

    /// OpenAI's error `code`, where it has one.
    public var code: String? {
        switch self {
        case .contextLength: return "context_length_exceeded"
        case .queueFull: return "rate_limit_exceeded"
        case .invalid, .shuttingDown, .failed: return nil
        }
    }
}

/// Why a completion ended, as OpenAI names it: `stop` (end of turn, EOS or a stop string), `length`
/// (max_tokens or the context), `content_filter` (a rule with `stop: true` fired).
public enum CompletionFinishReason: String, Codable, Sendable {
    case stop
    case length
    case contentFilter = "content_filter"
}
