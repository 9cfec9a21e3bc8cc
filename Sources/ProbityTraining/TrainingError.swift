// The one error enum of ProbityTraining: bad training or evaluation input (arguments, corpora,
// checkpoints), each case carrying what was wrong, where, and what was expected.

import ProbityLM

/// Bad SAE training or evaluation input. `description` is the one message a user sees.
public enum TrainingError: Error, CustomStringConvertible, Equatable {
    /// A setting out of range. `name` is the setting in library terms (`latents`, `batch size`);
    /// a front end that takes it from a flag names the flag instead.
    case badArgument(name: String, expected: String, found: String)
    case missingCorpus(path: String)
    case unreadableCorpus(path: String, reason: String)
    case badCorpusRecord(path: String, record: String, reason: String)
    case emptyCorpus(split: String, paths: [String])
    case badCheckpoint(path: String, reason: String)
    case checkpointMismatch(path: String, key: String, checkpoint: String, requested: String)
    /// A corpus conversation, and no chat format to render it: the model has no chat template and
    /// none was named.
    case conversationNeedsChatFormat(document: String)

    public var description: String {
        switch self {
        case let .badArgument(name, expected, found):
            return "\(name): expected \(expected), found \(found)"
        case let .missingCorpus(path):
            return "\(path): no such corpus file"
        case let .unreadableCorpus(path, reason):
            return "\(path): cannot read the corpus: \(reason)"
        case let .badCorpusRecord(path, record, reason):
            return "\(path): \(record): \(reason)"
        case let .emptyCorpus(split, paths):
            return "\(paths.joined(separator: ", ")): no \(split) tokens in the corpus"
        case let .badCheckpoint(path, reason):
            return "\(path): not a usable checkpoint: \(reason)"
        case let .checkpointMismatch(path, key, checkpoint, requested):
            return "\(path): the checkpoint was made with \(key) \(checkpoint), but this run asks for \(requested)"
        case let .conversationNeedsChatFormat(document):
            return "corpus document '\(document)' is a conversation, and the model has no chat template (tokenizer.chat_template) to render it; "
                + "pass --chat-format NAME (known formats: \(ChatFormat.knownNames))"
        }
    }
}
