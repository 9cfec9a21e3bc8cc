// Chat formats rendered natively: each case reproduces, byte for byte, what one public Jinja chat
// template renders under HF transformers (`apply_chat_template`), without a Jinja engine.
// Detection follows the idea of llama.cpp's src/llama-chat.cpp: recognise a template by markers.

/// A chat prompt format Probity renders natively. Each case is the exact output of one public
/// Jinja chat template (`tokenizer.chat_template`), including its `bos_token` where it writes one.
///
/// - `chatml-smollm`: SmolLM2-Instruct's ChatML. When the conversation does not start with a system
///   message, the template inserts `You are a helpful AI assistant named SmolLM, trained by Hugging Face`.
/// - `chatml`: plain ChatML (`<|im_start|>role\ncontent<|im_end|>\n`), no default system message.
/// - `llama3`: Meta Llama 3 Instruct: `<|begin_of_text|>`, headers, trimmed contents, `<|eot_id|>`.
/// - `gemma`: Gemma 2/3 instruct: `<bos>`, `<start_of_turn>user|model`, trimmed contents; a leading
///   system message is prepended to the first turn as Gemma 3's template does (Gemma 2's template
///   rejects system messages instead; with no system message the two render the same).
/// - `mistral-instruct`: Mistral-7B-Instruct v0.1/v0.2: `<s>[INST] user [/INST]assistant</s>`.
///   No system role; the template has no generation prompt, so the prompt always ends after `[/INST]`.
public enum ChatFormat: String, Sendable, CaseIterable {
    case chatmlSmolLM = "chatml-smollm"
    case chatml = "chatml"
    case llama3 = "llama3"
    case gemma = "gemma"
    case mistralInstruct = "mistral-instruct"

    /// The default system message SmolLM2-Instruct's template inserts.
    public static let smolLMDefaultSystem = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"

    /// The text that closes an assistant turn in this format: where generation should stop
    /// (as a stop string, or as the special token it names).
    public var endOfTurn: String {
        switch self {
        case .chatmlSmolLM, .chatml: return "<|im_end|>"
        case .llama3: return "<|eot_id|>"
        case .gemma: return "<end_of_turn>"
        case .mistralInstruct: return "</s>"
        }
    }

    /// The known format names, for messages: `chatml-smollm, chatml, llama3, gemma, mistral-instruct`.
    public static var knownNames: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// The format named `name` (as on the command line), or `GenerationError.unknownChatFormat`.
    public static func named(_ name: String) throws -> ChatFormat {
        guard let format = ChatFormat(rawValue: name) else { throw GenerationError.unknownChatFormat(name: name) }
        return format
    }

    /// Recognises a Jinja chat template by markers that pin down how it renders. A template that
    /// matches no format exactly is an error (`GenerationError.unrecognisedTemplate`), never a guess.
    public static func detect(template: String) throws -> ChatFormat {
        let normalized = TemplateText.normalize(template)
        if let format = allCases.first(where: { $0.signature.matches(normalized) }) { return format }
        throw GenerationError.unrecognisedTemplate(excerpt: TemplateText.excerpt(template),
                                                   family: TemplateText.family(of: normalized))
    }

    /// Renders a conversation as the template would with `add_generation_prompt`.
    /// Throws where the template raises (roles that must alternate, unsupported roles), and for an
    /// empty conversation.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> String {
        try renderChat(messages, addGenerationPrompt: addGenerationPrompt).text
    }

    /// The rendered conversation with where each message's own text lies in it, so that tokenizing
    /// it turns only the template's markup into special tokens (`Tokenizer.encode(_: RenderedChat)`).
    public func renderChat(_ messages: [ChatMessage], addGenerationPrompt: Bool) throws -> RenderedChat {
        guard !messages.isEmpty else { throw GenerationError.emptyConversation(format: rawValue) }
        var out = RenderedChat()
        switch self {
        case .chatmlSmolLM, .chatml:
            if self == .chatmlSmolLM, messages[0].role != .system {
                out.markup("<|im_start|>system\n")
                out.content(Self.smolLMDefaultSystem)
                out.markup("<|im_end|>\n")
            }
            for message in messages {
                out.markup("<|im_start|>" + message.role.rawValue + "\n")
                out.content(message.content)
                out.markup("<|im_end|>\n")
            }
            if addGenerationPrompt { out.markup("<|im_start|>assistant\n") }

        case .llama3:
            out.markup("<|begin_of_text|>")
            for message in messages {
                out.markup("<|start_header_id|>" + message.role.rawValue + "<|end_header_id|>\n\n")
                out.content(TemplateText.trim(message.content))
                out.markup("<|eot_id|>")
            }
            if addGenerationPrompt { out.markup("<|start_header_id|>assistant<|end_header_id|>\n\n") }

        case .gemma:
            out.markup("<bos>")
            // The template takes the system message out of the loop and prefixes the first turn
            // with it untrimmed, then counts turns from there.
            let hasSystem = messages[0].role == .system
            let start = hasSystem ? 1 : 0
            for index in start..<messages.count {
                let message = messages[index]
                let turn = index - start
                try checkAlternation(message, index: index, turn: turn)
                let role = message.role == .assistant ? "model" : message.role.rawValue
                out.markup("<start_of_turn>" + role + "\n")
                if turn == 0 && hasSystem {
                    out.content(messages[0].content)
                    out.markup("\n\n")
                }
                out.content(TemplateText.trim(message.content))
                out.markup("<end_of_turn>\n")
            }
            if addGenerationPrompt { out.markup("<start_of_turn>model\n") }

        case .mistralInstruct:
            out.markup("<s>")
            for (index, message) in messages.enumerated() {
                // The template would first complain about alternation; naming the role helps more.
                if message.role == .system {
                    throw GenerationError.roleNotSupported(format: rawValue, index: index, role: message.role.rawValue)
                }
                try checkAlternation(message, index: index, turn: index)
                if message.role == .user {
                    out.markup("[INST] ")
                    out.content(message.content)
                    out.markup(" [/INST]")
                } else {
                    out.content(message.content)
                    out.markup("</s>")
                }
            }
        }
        return out
    }

    /// The templates' `(role == 'user') != (turn % 2 == 0)` check: user on even turns, not on odd ones.
    private func checkAlternation(_ message: ChatMessage, index: Int, turn: Int) throws {
        let userTurn = turn % 2 == 0
        if (message.role == .user) != userTurn {
            throw GenerationError.rolesMustAlternate(format: rawValue, index: index, role: message.role.rawValue,
                                                     expected: userTurn ? "user" : "assistant")
        }
    }
}

/// A conversation rendered by a chat format: its text, and the UTF-8 byte ranges of the messages'
/// own text in it (in order, one per piece of message text the template writes, empty ones too; the
/// last is the last message's). Everything outside
/// them is the template's markup. Tokenized with `Tokenizer.encode(_:addSpecial:)`, only markup turns
/// into special tokens: a message that holds `<|im_end|>` or `<|im_start|>system` stays text and
/// cannot forge a turn.
public struct RenderedChat: Sendable, Equatable {
    public private(set) var text = ""
    /// Byte ranges of message text in `text.utf8`.
    public private(set) var content: [Range<Int>] = []

    public init() {}

    /// The template's own text.
    mutating func markup(_ s: String) { text += s }

    /// A message's text.
    mutating func content(_ s: String) {
        let start = text.utf8.count
        text += s
        content.append(start..<text.utf8.count)
    }

    /// The first `bytes` bytes of the rendering, with the content ranges cut to them. `bytes` must
    /// fall on a character boundary (the start or end of a content range always does).
    public func prefix(bytes: Int) -> RenderedChat {
        var out = RenderedChat()
        let n = min(max(bytes, 0), text.utf8.count)
        out.text = String(decoding: text.utf8.prefix(n), as: UTF8.self)
        out.content = content.compactMap { r in
            let clipped = r.clamped(to: 0..<n)
            return clipped.isEmpty ? nil : clipped
        }
        return out
    }
}
