// Bad input on the way into generation: chat messages and their files, chat templates, sampling
// options and stop strings. Each case carries the evidence its message shows the user.

/// An input error from preparing a generation: messages, chat formats, sampling, stop strings.
public enum GenerationError: Error, CustomStringConvertible, Equatable {
    // Messages files.
    case messagesFileUnreadable(path: String, reason: String)
    case messagesFileShape(path: String, found: String)
    case messagesFileEmpty(path: String)
    case messageNotObject(path: String, index: Int, found: String)
    case messageMissingField(path: String, index: Int, field: String)
    case messageFieldType(path: String, index: Int, field: String, found: String)
    case messageUnknownField(path: String, index: Int, field: String)
    case unknownRole(path: String?, index: Int?, role: String)

    // Chat formats and templates.
    case unknownChatFormat(name: String)
    case unrecognisedTemplate(excerpt: String, family: String?)
    case modelHasNoTemplate(path: String)
    case emptyConversation(format: String)
    case rolesMustAlternate(format: String, index: Int, role: String, expected: String)
    case roleNotSupported(format: String, index: Int, role: String)

    // Sampling and stopping.
    case invalidSamplingOption(name: String, value: String, expected: String)
    case emptyStopString(index: Int)

    // Generation itself.
    case emptyPrompt
    case badMaxTokens(Int)

    public var description: String {
        switch self {
        case let .messagesFileUnreadable(path, reason):
            return "\(path): cannot read messages file: \(reason)"
        case let .messagesFileShape(path, found):
            return "\(path): expected a JSON array of messages or an object with a \"messages\" array, found \(found)"
        case let .messagesFileEmpty(path):
            return "\(path): no messages (expected at least one)"
        case let .messageNotObject(path, index, found):
            return "\(path): message \(index): expected an object with \"role\" and \"content\", found \(found)"
        case let .messageMissingField(path, index, field):
            return "\(path): message \(index): missing \"\(field)\""
        case let .messageFieldType(path, index, field, found):
            return "\(path): message \(index): \"\(field)\" must be a string, found \(found)"
        case let .messageUnknownField(path, index, field):
            return "\(path): message \(index): unknown field \"\(field)\" (expected only \"role\" and \"content\")"
        case let .unknownRole(path, index, role):
            let place = [path, index.map { "message \($0)" }].compactMap { $0 }.joined(separator: ": ")
            return (place.isEmpty ? "" : place + ": ")
                + "unknown role '\(role)' (expected \(ChatMessage.Role.allCases.map(\.rawValue).joined(separator: ", ")))"
        case let .unknownChatFormat(name):
            return "unknown chat format '\(name)' (known formats: \(ChatFormat.knownNames))"
        case let .unrecognisedTemplate(excerpt, family):
            let looks = family.map { " It looks like a \($0) template, but not a variant Probity renders exactly." } ?? ""
            return "the model's chat template is not one Probity recognises: \"\(excerpt)\".\(looks)"
                + " Name a chat format to use instead (known formats: \(ChatFormat.knownNames))"
        case let .modelHasNoTemplate(path):
            return "\(path): the model has no chat template (tokenizer.chat_template);"
                + " name a chat format to use (known formats: \(ChatFormat.knownNames))"
        case let .emptyConversation(format):
            return "\(format): the conversation has no messages"
        case let .rolesMustAlternate(format, index, role, expected):
            return "\(format): message \(index) has role '\(role)' but the template requires '\(expected)' there"
                + " (after an optional leading system message, roles must alternate user/assistant)"
        case let .roleNotSupported(format, index, role):
            return "\(format): message \(index): the template does not support role '\(role)'"
        case let .invalidSamplingOption(name, value, expected):
            return "sampling option \(name) = \(value): expected \(expected)"
        case let .emptyStopString(index):
            return "stop string \(index) is empty (a stop string needs at least one character)"
        case .emptyPrompt:
            return "the prompt is empty: nothing to run the model on"
        case let .badMaxTokens(n):
            return "max tokens must be 0 or more, found \(n)"
        }
    }
}
