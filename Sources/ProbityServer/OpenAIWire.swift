// OpenAI's wire protocol as `probity serve` speaks it: the request bodies of /v1/chat/completions
// and /v1/completions, and the response objects (`chat.completion`, `chat.completion.chunk`,
// `text_completion`, the model list). Keys are pinned; fields a request may hold that Probity does
// not use are ignored, as OpenAI clients send many, but a field it reads must have the right type.

import ProbityLM
import ProbityServe

// MARK: Requests

/// `stop`: one string or an array of them.
public enum StopSequences: Codable, Sendable, Equatable {
    case one(String)
    case many([String])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { self = .one(s); return }
        if let a = try? c.decode([String].self) { self = .many(a); return }
        throw DecodingError.typeMismatch(StopSequences.self, .init(codingPath: decoder.codingPath,
                                                                   debugDescription: "expected a string or an array of strings"))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .one(let s): try c.encode(s)
        case .many(let a): try c.encode(a)
        }
    }

    var strings: [String] {
        switch self {
        case .one(let s): return [s]
        case .many(let a): return a
        }
    }
}

/// `stream_options`.
public struct StreamOptions: Codable, Sendable, Equatable {
    /// A last chunk with the usage and no choices before `[DONE]`.
    public var includeUsage: Bool?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case includeUsage = "include_usage"
    }

    public init(includeUsage: Bool? = nil) { self.includeUsage = includeUsage }
}

/// A message's `content`: a string, an array of content parts (only `text` parts are read), or null.
public enum MessageContent: Codable, Sendable, Equatable {
    case text(String)
    case parts([ContentPart])
    case none

    public struct ContentPart: Codable, Sendable, Equatable {
        public var type: String
        public var text: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case type, text
        }

        public init(type: String, text: String?) {
            self.type = type
            self.text = text
        }
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .none; return }
        if let s = try? c.decode(String.self) { self = .text(s); return }
        if let p = try? c.decode([ContentPart].self) { self = .parts(p); return }
        throw DecodingError.typeMismatch(MessageContent.self, .init(codingPath: decoder.codingPath,
                                                                    debugDescription: "expected a string or an array of content parts"))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .text(let s): try c.encode(s)
        case .parts(let p): try c.encode(p)
        case .none: try c.encodeNil()
        }
    }
}

/// One message of a chat request.
public struct WireMessage: Codable, Sendable, Equatable {
    public var role: String
    public var content: MessageContent?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case role, content
    }

    public init(role: String, content: String) {
        self.role = role
        self.content = .text(content)
    }

    /// The message as the chat template takes it; `param` names it in errors.
    func chatMessage(param: String) throws -> ChatMessage {
        let roleName = role == "developer" ? "system" : role
        guard let r = ChatMessage.Role(rawValue: roleName) else {
            throw APIError.invalid("\(param).role: expected system, developer, user or assistant, found '\(role)'", param: param + ".role")
        }
        let text: String
        switch content ?? MessageContent.none {
        case .text(let s): text = s
        case .none: text = ""
        case .parts(let parts):
            var out = ""
            for (i, p) in parts.enumerated() {
                guard p.type == "text", let t = p.text else {
                    throw APIError.invalid("\(param).content[\(i)]: only text parts are supported, found type '\(p.type)'",
                                           param: "\(param).content[\(i)]")
                }
                out += t
            }
            text = out
        }
        return ChatMessage(role: r, content: text)
    }
}

/// The sampling fields chat and text completions share.
protocol SamplingRequest {
    var temperature: Double? { get }
    var topP: Double? { get }
    var seed: Int64? { get }
    var stop: StopSequences? { get }
    var n: Int? { get }
    var stream: Bool? { get }
    var streamOptions: StreamOptions? { get }
    var probity: ProbityRequestOptions? { get }
}

extension SamplingRequest {
    /// The engine's request for `input` with at most `maxTokens`; `n` other than 1 is refused.
    func completionRequest(input: CompletionRequest.Input, maxTokens: Int?) throws -> CompletionRequest {
        if let n, n != 1 { throw APIError.invalid("n must be 1 (one choice per request), found \(n)", param: "n") }
        return CompletionRequest(input: input, maxTokens: maxTokens, temperature: temperature ?? 1, topP: topP ?? 1,
                                 seed: seed.map { UInt64(bitPattern: $0) }, stop: stop?.strings ?? [], probity: probity)
    }

    var streaming: Bool { stream ?? false }
    var includeUsage: Bool { streamOptions?.includeUsage ?? false }
}

/// The body of `POST /v1/chat/completions`.
public struct ChatCompletionRequest: Codable, Sendable, SamplingRequest {
    public var model: String?
    public var messages: [WireMessage]
    public var maxTokens: Int?
    public var maxCompletionTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    public var seed: Int64?
    public var stop: StopSequences?
    public var n: Int?
    public var stream: Bool?
    public var streamOptions: StreamOptions?
    public var probity: ProbityRequestOptions?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, messages, maxTokens = "max_tokens", maxCompletionTokens = "max_completion_tokens", temperature,
             topP = "top_p", seed, stop, n, stream, streamOptions = "stream_options", probity
    }

    public init(model: String? = nil, messages: [WireMessage], maxTokens: Int? = nil, temperature: Double? = nil, seed: Int64? = nil,
                stop: StopSequences? = nil, stream: Bool? = nil, streamOptions: StreamOptions? = nil, probity: ProbityRequestOptions? = nil) {
        self.model = model
        self.messages = messages
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.seed = seed
        self.stop = stop
        self.stream = stream
        self.streamOptions = streamOptions
        self.probity = probity
    }

    func completionRequest() throws -> CompletionRequest {
        let messages = try self.messages.enumerated().map { try $0.element.chatMessage(param: "messages[\($0.offset)]") }
        if let a = maxTokens, let b = maxCompletionTokens, a != b {
            throw APIError.invalid("max_tokens (\(a)) and max_completion_tokens (\(b)) differ; give one", param: "max_completion_tokens")
        }
        return try completionRequest(input: .chat(messages), maxTokens: maxCompletionTokens ?? maxTokens)
    }
}

/// `prompt`: a string, or an array holding one string.
public enum PromptField: Codable, Sendable, Equatable {
    case text(String)
    case texts([String])

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        if let s = try? c.decode(String.self) { self = .text(s); return }
        if let a = try? c.decode([String].self) { self = .texts(a); return }
        throw DecodingError.typeMismatch(PromptField.self, .init(codingPath: decoder.codingPath,
                                                                 debugDescription: "expected a string or an array of one string"))
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case .text(let s): try c.encode(s)
        case .texts(let a): try c.encode(a)
        }
    }
}

/// The body of `POST /v1/completions`.
public struct TextCompletionRequest: Codable, Sendable, SamplingRequest {
    public var model: String?
    public var prompt: PromptField
    public var maxTokens: Int?
    public var temperature: Double?
    public var topP: Double?
    public var seed: Int64?
    public var stop: StopSequences?
    public var n: Int?
    public var stream: Bool?
    public var streamOptions: StreamOptions?
    public var probity: ProbityRequestOptions?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case model, prompt, maxTokens = "max_tokens", temperature, topP = "top_p", seed, stop, n, stream,
             streamOptions = "stream_options", probity
    }

    public init(model: String? = nil, prompt: String, maxTokens: Int? = nil, temperature: Double? = nil, seed: Int64? = nil,
                stream: Bool? = nil, streamOptions: StreamOptions? = nil, probity: ProbityRequestOptions? = nil) {
        self.model = model
        self.prompt = .text(prompt)
        self.maxTokens = maxTokens
        self.temperature = temperature
        self.seed = seed
        self.stream = stream
        self.streamOptions = streamOptions
        self.probity = probity
    }

    func completionRequest() throws -> CompletionRequest {
        let text: String
        switch prompt {
        case .text(let s): text = s
        case .texts(let a):
            guard a.count == 1, let only = a.first else {
                throw APIError.invalid("prompt: one prompt per request (an array must hold exactly one string), found \(a.count)", param: "prompt")
            }
            text = only
        }
        return try completionRequest(input: .text(text), maxTokens: maxTokens)
    }
}

// MARK: Responses

/// `usage`.
public struct Usage: Codable, Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    public var totalTokens: Int

    enum CodingKeys: String, CodingKey, CaseIterable {
        case promptTokens = "prompt_tokens", completionTokens = "completion_tokens", totalTokens = "total_tokens"
    }

    public init(promptTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        totalTokens = promptTokens + completionTokens
    }
}

/// An assistant message of a chat response.
public struct AssistantMessage: Codable, Sendable, Equatable {
    public var role: String
    public var content: String

    enum CodingKeys: String, CodingKey, CaseIterable {
        case role, content
    }
}

/// A `chat.completion`.
public struct ChatCompletion: Codable, Sendable, Equatable {
    public struct Choice: Codable, Sendable, Equatable {
        public var index: Int
        public var message: AssistantMessage
        public var finishReason: String

        enum CodingKeys: String, CodingKey, CaseIterable {
            case index, message, finishReason = "finish_reason"
        }
    }

    public var id: String
    public var object: String
    public var created: Int
    public var model: String
    public var choices: [Choice]
    public var usage: Usage
    public var probity: ProbityResult

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, object, created, model, choices, usage, probity
    }
}

/// A `chat.completion.chunk` of a streamed chat response.
public struct ChatCompletionChunk: Codable, Sendable, Equatable {
    public struct Delta: Codable, Sendable, Equatable {
        public var role: String?
        public var content: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case role, content
        }
    }

    public struct Choice: Codable, Sendable, Equatable {
        public var index: Int
        public var delta: Delta
        /// null until the last content chunk, as OpenAI sends it.
        @EncodedAsNull public var finishReason: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case index, delta, finishReason = "finish_reason"
        }

        public init(index: Int, delta: Delta, finishReason: String?) {
            self.index = index
            self.delta = delta
            self.finishReason = finishReason
        }
    }

    public var id: String
    public var object: String
    public var created: Int
    public var model: String
    public var choices: [Choice]
    /// Only on the usage chunk (`stream_options.include_usage`).
    public var usage: Usage?
    /// Only on the last chunk before `[DONE]`.
    public var probity: ProbityResult?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, object, created, model, choices, usage, probity
    }
}

/// An optional field written as `null` when absent (OpenAI's `finish_reason` on streamed chunks),
/// where synthesized coding would leave the key out; read as nil when null or missing.
@propertyWrapper
public struct EncodedAsNull<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) {
        self.wrappedValue = wrappedValue
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.singleValueContainer()
        wrappedValue = c.decodeNil() ? nil : try c.decode(Value.self)
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        if let wrappedValue { try c.encode(wrappedValue) } else { try c.encodeNil() }
    }
}

extension KeyedDecodingContainer {
    /// A missing key reads as nil, as for a plain optional.
    public func decode<T>(_ type: EncodedAsNull<T>.Type, forKey key: Key) throws -> EncodedAsNull<T> {
        try decodeIfPresent(type, forKey: key) ?? EncodedAsNull(wrappedValue: nil)
    }
}

/// A `text_completion`, whole or (streamed) one chunk of it.
public struct TextCompletion: Codable, Sendable, Equatable {
    public struct Choice: Codable, Sendable, Equatable {
        public var text: String
        public var index: Int
        /// null on streamed chunks before the last.
        @EncodedAsNull public var finishReason: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case text, index, finishReason = "finish_reason"
        }

        public init(text: String, index: Int, finishReason: String?) {
            self.text = text
            self.index = index
            self.finishReason = finishReason
        }
    }

    public var id: String
    public var object: String
    public var created: Int
    public var model: String
    public var choices: [Choice]
    public var usage: Usage?
    public var probity: ProbityResult?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, object, created, model, choices, usage, probity
    }
}

/// `GET /v1/models`.
public struct ModelList: Codable, Sendable, Equatable {
    public struct Model: Codable, Sendable, Equatable {
        public var id: String
        public var object: String
        public var created: Int
        public var ownedBy: String

        enum CodingKeys: String, CodingKey, CaseIterable {
            case id, object, created, ownedBy = "owned_by"
        }
    }

    public var object: String
    public var data: [Model]

    enum CodingKeys: String, CodingKey, CaseIterable {
        case object, data
    }
}

/// `GET /health`.
public struct HealthStatus: Codable, Sendable, Equatable {
    /// `ok`, or `shutting_down`.
    public var status: String
    public var queued: Int
    public var running: Int

    enum CodingKeys: String, CodingKey, CaseIterable {
        case status, queued, running
    }

    public init(status: String, queued: Int, running: Int) {
        self.status = status
        self.queued = queued
        self.running = running
    }
}
