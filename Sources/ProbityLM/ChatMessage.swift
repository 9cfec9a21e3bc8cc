// A chat message and the messages file users hand the CLI: the OpenAI-style list of
// {"role", "content"} objects, bare or under a "messages" key.

import Foundation
import ProbityFormats

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable, Codable {
    /// Who speaks. Encoded as the lowercase names chat templates use.
    public enum Role: String, Sendable, Equatable, CaseIterable, Codable {
        case system, user, assistant

        public init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            let name = try container.decode(String.self)
            guard let role = Role(rawValue: name) else { throw GenerationError.unknownRole(path: nil, index: nil, role: name) }
            self = role
        }
    }

    public var role: Role
    public var content: String

    public init(role: Role, content: String) {
        self.role = role
        self.content = content
    }

    /// A system message.
    public static func system(_ content: String) -> ChatMessage { ChatMessage(role: .system, content: content) }
    /// A user message.
    public static func user(_ content: String) -> ChatMessage { ChatMessage(role: .user, content: content) }
    /// An assistant message.
    public static func assistant(_ content: String) -> ChatMessage { ChatMessage(role: .assistant, content: content) }
}

extension ChatMessage {
    /// Reads a messages file: a non-empty JSON array of `{"role": ..., "content": ...}` objects, or
    /// an object whose `"messages"` key holds one (other keys, as in an OpenAI request body, are
    /// ignored). Every problem names the file and the message index.
    public static func load(messagesFile path: String) throws -> [ChatMessage] {
        guard let data = try WholeFile.contents(path, what: "messages file", limit: FileSizeLimits.smallJSON) else {
            var isDirectory: ObjCBool = false
            let reason: String
            if !FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
                reason = "no such file"
            } else if isDirectory.boolValue {
                reason = "it is a directory"
            } else if !FileManager.default.isReadableFile(atPath: path) {
                reason = "permission denied"
            } else {
                reason = "cannot read it"
            }
            throw GenerationError.messagesFileUnreadable(path: path, reason: reason)
        }
        return try parse(messagesJSON: data, source: path)
    }

    /// Parses the contents of a messages file; `source` names it in errors.
    public static func parse(messagesJSON data: Data, source: String) throws -> [ChatMessage] {
        let root = try StrictJSON.object(from: data, path: source, maxValues: StrictJSON.maxSmallDocumentValues)
        let list: [Any]
        if let array = root as? [Any] {
            list = array
        } else if let object = root as? [String: Any] {
            guard let inner = object["messages"] else {
                throw GenerationError.messagesFileShape(path: source, found: "an object without a \"messages\" key")
            }
            guard let array = inner as? [Any] else {
                throw GenerationError.messagesFileShape(path: source, found: "\"messages\" holding \(jsonKind(inner))")
            }
            list = array
        } else {
            throw GenerationError.messagesFileShape(path: source, found: jsonKind(root))
        }

        guard !list.isEmpty else { throw GenerationError.messagesFileEmpty(path: source) }
        var messages: [ChatMessage] = []
        messages.reserveCapacity(list.count)
        for (index, item) in list.enumerated() {
            guard let object = item as? [String: Any] else {
                throw GenerationError.messageNotObject(path: source, index: index, found: jsonKind(item))
            }
            // Sorted so the reported field does not depend on dictionary order.
            if let extra = object.keys.sorted().first(where: { $0 != "role" && $0 != "content" }) {
                throw GenerationError.messageUnknownField(path: source, index: index, field: extra)
            }
            let role = try stringField("role", of: object, index: index, source: source)
            let content = try stringField("content", of: object, index: index, source: source)
            guard let parsed = Role(rawValue: role) else {
                throw GenerationError.unknownRole(path: source, index: index, role: role)
            }
            messages.append(ChatMessage(role: parsed, content: content))
        }
        return messages
    }

    private static func stringField(_ field: String, of object: [String: Any], index: Int, source: String) throws -> String {
        guard let value = object[field] else {
            throw GenerationError.messageMissingField(path: source, index: index, field: field)
        }
        guard let string = value as? String else {
            throw GenerationError.messageFieldType(path: source, index: index, field: field, found: jsonKind(value))
        }
        return string
    }

    /// The JSON kind of a value from JSONSerialization, for messages ("an array", "a number").
    private static func jsonKind(_ value: Any) -> String {
        switch value {
        case is String: return "a string"
        case is [Any]: return "an array"
        case is [String: Any]: return "an object"
        case is NSNull: return "null"
        case let number as NSNumber:
            // JSONSerialization hands booleans back as NSNumbers of C type `char`, on Linux and Darwin.
            return String(cString: number.objCType) == "c" ? "a boolean" : "a number"
        default: return "\(type(of: value))"
        }
    }
}
