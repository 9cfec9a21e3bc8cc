// Prompt sets for differential search and contrastive derivation: one prompt per line, as raw text
// or as chat messages rendered with the model's chat template, keeping where the last message's
// text lies so a reply can stand for its conversation.

import Foundation
import ProbityFormats
import ProbityLM

/// A prompt set, one prompt per line: JSONL (`{"text": ...}`, `{"prompt": ...}`,
/// `{"messages": [{"role", "content"}, ...]}` rendered with the chat template, or a JSON string) or,
/// for `.txt` files, plain text.
public enum PromptSet {
    /// Minimum prompts per set: Welch's t needs a variance on each side, a mean difference two pairs.
    public static let minimumCount = 2

    /// One prompt of a set.
    public struct Prompt: Sendable, Equatable {
        /// The prompt's tokens, BOS included as the model adds it.
        public var tokens: [Int]
        /// For chat messages, the positions of the last message's text (its content, without the
        /// template's markers around it); nil for raw text.
        public var reply: Range<Int>?
        /// The line of the file the prompt came from (1-based).
        public var line: Int
        /// Its `ItemFingerprint`: of the text for raw text, of the messages for a conversation (whose
        /// last message, when the assistant's, is the reply: the same fingerprint as the eval item
        /// with that reply as its `response`); nil for prompts given as tokens.
        public var item: String?

        public init(tokens: [Int], reply: Range<Int>?, line: Int, item: String? = nil) {
            self.tokens = tokens
            self.reply = reply
            self.line = line
            self.item = item
        }
    }

    /// The prompts' tokens. Raw text is tokenized with BOS as the model adds it and special tokens
    /// parsed; chat messages are rendered without a generation prompt.
    public static func load(path: String, tokenizer: Tokenizer, chatFormat: ChatFormat?) throws -> [[Int]] {
        try prompts(path: path, tokenizer: tokenizer, chatFormat: chatFormat).map(\.tokens)
    }

    /// The prompts, with each chat conversation's last-message positions.
    public static func prompts(path: String, tokenizer: Tokenizer, chatFormat: ChatFormat?) throws -> [Prompt] {
        guard let data = try WholeFile.contents(path, what: "prompt set", limit: FileSizeLimits.textData) else {
            throw FeatureError.missingFile(path: path, what: "prompt set")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw FeatureError.badPairs(path: path, line: 1, reason: "not UTF-8 text")
        }
        let plain = path.lowercased().hasSuffix(".txt")
        let encode = { (s: String) in tokenizer.encode(s, addSpecial: true, parseSpecial: true) }
        var prompts: [Prompt] = []
        // "\r\n" is one Character in Swift, so split on either.
        for (n, line) in StrictJSON.lines(text).enumerated() {
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            let lineNumber = n + 1
            func bad(_ reason: String) -> FeatureError { .badPairs(path: path, line: lineNumber, reason: reason) }
            var prompt: Prompt
            if plain {
                prompt = Prompt(tokens: encode(String(line)), reply: nil, line: lineNumber, item: ItemFingerprint.of(text: String(line)))
            } else {
                let value = try StrictJSON.object(line: line, of: text, number: lineNumber, path: path)
                if let s = value as? String {
                    prompt = Prompt(tokens: encode(s), reply: nil, line: lineNumber, item: ItemFingerprint.of(text: s))
                } else if let o = value as? [String: Any], let s = (o["text"] ?? o["prompt"]) as? String {
                    prompt = Prompt(tokens: encode(s), reply: nil, line: lineNumber, item: ItemFingerprint.of(text: s))
                } else if let o = value as? [String: Any], let raw = o["messages"] {
                    guard let format = chatFormat else {
                        throw FeatureError.noChatFormat(path: path, line: lineNumber)
                    }
                    guard raw is [Any] else { throw bad("'messages' must be a list of {\"role\", \"content\"} objects") }
                    let messages = try ChatMessage.parse(messagesJSON: try JSONSerialization.data(withJSONObject: raw),
                                                         source: "\(path):\(lineNumber)")
                    let rendered = try format.renderChat(messages, addGenerationPrompt: false)
                    let tokens = tokenizer.encode(rendered, addSpecial: true)
                    prompt = Prompt(tokens: tokens, reply: replyPositions(rendered, tokens: tokens,
                                                                          encode: { tokenizer.encode($0, addSpecial: true) }),
                                    line: lineNumber, item: ItemFingerprint.of(messages: messages, response: nil))
                } else {
                    throw bad("expected a JSON string or an object with \"text\", \"prompt\" or \"messages\"")
                }
            }
            guard prompt.tokens.contains(where: { !tokenizer.isSpecial($0) }) else {
                throw bad("the prompt has no tokens other than special ones")
            }
            prompts.append(prompt)
        }
        guard prompts.count >= minimumCount else {
            throw FeatureError.promptSetSize(path: path, count: prompts.count, minimum: minimumCount)
        }
        return prompts
    }

    /// Where the last message's text lies in a rendered conversation's tokens: from the end of the
    /// tokens the rendering before it shares with the whole, to the end of those the rendering up to
    /// its end shares with it. A token that spans the boundary counts as the message's. Nil when the
    /// message's text is empty.
    static func replyPositions(_ rendered: RenderedChat, tokens: [Int], encode: (RenderedChat) -> [Int]) -> Range<Int>? {
        guard let at = rendered.content.last, !at.isEmpty else { return nil }
        func shared(_ prefix: [Int]) -> Int {
            var n = 0
            while n < prefix.count, n < tokens.count, prefix[n] == tokens[n] { n += 1 }
            return n
        }
        let start = shared(encode(rendered.prefix(bytes: at.lowerBound)))
        let end = shared(encode(rendered.prefix(bytes: at.upperBound)))
        return start < end ? start..<end : nil
    }
}
