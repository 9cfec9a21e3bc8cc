// Labelled eval data (docs/eval.md): JSONL, one item a line, `{"id", "messages", "response",
// "label", "concept"}` (optional `"pair"` and `"source"`). Read strictly: every problem names the
// file, the line and the key.

import Foundation
import ProbityFormats
import ProbityLM

/// One labelled exchange: a conversation, the assistant's response to it, and whether the
/// response shows the concept (label 1) or not (label 0). Items of concept `benign` are negatives
/// for every rule.
public struct EvalItem: Sendable, Equatable {
    public var id: String
    /// The conversation before the response (system, user and earlier assistant turns).
    public var messages: [ChatMessage]
    /// The assistant turn that is teacher-forced and judged.
    public var response: String
    public var positive: Bool
    public var concept: String
    /// Items written as a matched pair (the same conversation, one response each way) share this.
    public var pair: String?
    /// Where the item comes from, in words.
    public var source: String?
    /// The file and line it was read from.
    public var file: String
    public var line: Int

    /// The concept every rule treats as a negative.
    public static let benign = "benign"

    public init(id: String, messages: [ChatMessage], response: String, positive: Bool, concept: String,
                pair: String? = nil, source: String? = nil, file: String = "", line: Int = 0) {
        self.id = id
        self.messages = messages
        self.response = response
        self.positive = positive
        self.concept = concept
        self.pair = pair
        self.source = source
        self.file = file
        self.line = line
    }
}

extension EvalItem {
    static let keys: Set<String> = ["id", "messages", "response", "label", "concept", "pair", "source"]

    /// Reads every item of the JSONL files at `paths`. Ids must be unique across all of them.
    public static func load(paths: [String]) throws -> [EvalItem] {
        var items: [EvalItem] = []
        var seen: [String: String] = [:]
        for path in paths {
            guard let data = try WholeFile.contents(path, what: "data file", limit: FileSizeLimits.textData) else {
                throw AuditError.cannotRead(path: path, reason: "no such file")
            }
            guard let text = String(data: data, encoding: .utf8) else {
                throw AuditError.cannotRead(path: path, reason: "not UTF-8 text")
            }
            for (i, line) in StrictJSON.lines(text).enumerated() {
                guard !line.allSatisfy(\.isWhitespace) else { continue }
                try StrictJSON.validate(line: line, of: text, number: i + 1, path: path)
                let item = try parse(line: String(line), file: path, number: i + 1)
                if let first = seen[item.id] {
                    throw AuditError.data(path: path, line: i + 1, reason: "id '\(item.id)' already used at \(first)")
                }
                seen[item.id] = "\(path):\(i + 1)"
                items.append(item)
            }
        }
        return items
    }

    /// Conversations to run rather than score (`probity diff`): the same lines, with `id`, `label`
    /// and `concept` optional (an item without an id is named `line N`; unlabelled, it is a
    /// negative with an empty concept) and `response` optional (empty: the conversation alone, ending
    /// with the generation prompt). Ids must still be unique within the file.
    public static func loadConversations(path: String) throws -> [EvalItem] {
        guard let data = try WholeFile.contents(path, what: "data file", limit: FileSizeLimits.textData) else {
            throw AuditError.cannotRead(path: path, reason: "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw AuditError.cannotRead(path: path, reason: "not UTF-8 text")
        }
        var items: [EvalItem] = []
        var seen: [String: Int] = [:]
        for (i, line) in StrictJSON.lines(text).enumerated() {
            guard !line.allSatisfy(\.isWhitespace) else { continue }
            try StrictJSON.validate(line: line, of: text, number: i + 1, path: path)
            let item = try parse(line: String(line), file: path, number: i + 1, conversation: true)
            if let first = seen[item.id] {
                throw AuditError.data(path: path, line: i + 1, reason: "id '\(item.id)' already used at line \(first)")
            }
            seen[item.id] = i + 1
            items.append(item)
        }
        return items
    }

    /// One line's item; with `conversation`, as `loadConversations` reads it.
    static func parse(line: String, file: String, number: Int, conversation: Bool = false) throws -> EvalItem {
        func bad(_ reason: String) -> AuditError { AuditError.data(path: file, line: number, reason: reason) }
        let value: JSONValue
        do { value = try JSONDecoder().decode(JSONValue.self, from: Data(line.utf8)) } catch {
            throw bad("not a JSON object: \(AuditReport.reason(error))")
        }
        guard case .object(let o) = value else { throw bad("expected a JSON object, found \(value.summary)") }
        if let extra = o.keys.sorted().first(where: { !keys.contains($0) }) {
            throw bad("unknown key '\(extra)' (expected \(keys.sorted().joined(separator: ", ")))")
        }
        func string(_ key: String, required: Bool = true) throws -> String? {
            switch o[key] {
            case .string(let s)?: return s
            case nil where !required: return nil
            case nil: throw bad("missing '\(key)'")
            case let other?: throw bad("'\(key)': expected a string, found \(other.summary)")
            }
        }
        let id = try string("id", required: !conversation) ?? "line \(number)"
        guard !id.isEmpty else { throw bad("'id' is empty") }
        let response = try string("response", required: !conversation) ?? ""
        let concept = try string("concept", required: !conversation) ?? ""
        guard !concept.isEmpty || o["concept"] == nil else { throw bad("'concept' is empty") }
        let positive: Bool
        switch o["label"] {
        case .number(1)?: positive = true
        case .number(0)?: positive = false
        case nil where conversation: positive = false
        case nil: throw bad("missing 'label'")
        case let other?: throw bad("'label': expected 0 or 1, found \(other.summary)")
        }
        if concept == benign && positive { throw bad("a 'benign' item must have label 0") }
        guard case .array(let list)? = o["messages"] else {
            throw bad(o["messages"] == nil ? "missing 'messages'" : "'messages': expected an array of {role, content}")
        }
        var messages: [ChatMessage] = []
        for (k, m) in list.enumerated() {
            guard case .object(let fields) = m else { throw bad("messages[\(k)]: expected an object {role, content}") }
            if let extra = fields.keys.sorted().first(where: { $0 != "role" && $0 != "content" }) {
                throw bad("messages[\(k)]: unknown key '\(extra)' (expected role, content)")
            }
            guard case .string(let roleName)? = fields["role"], let role = ChatMessage.Role(rawValue: roleName) else {
                throw bad("messages[\(k)].role: expected one of \(ChatMessage.Role.allCases.map(\.rawValue).joined(separator: ", ")), found \(fields["role"]?.summary ?? "nothing")")
            }
            guard case .string(let content)? = fields["content"] else {
                throw bad("messages[\(k)].content: expected a string, found \(fields["content"]?.summary ?? "nothing")")
            }
            messages.append(ChatMessage(role: role, content: content))
        }
        guard let last = messages.last else { throw bad("'messages' is empty") }
        guard last.role != .assistant else { throw bad("the last message is the assistant's: the response is the assistant turn") }
        return EvalItem(id: id, messages: messages, response: response, positive: positive, concept: concept,
                        pair: try string("pair", required: false), source: try string("source", required: false),
                        file: file, line: number)
    }
}
