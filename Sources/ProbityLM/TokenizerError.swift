// Errors of the tokenizer: a vocabulary that cannot be loaded as llama.cpp would, and token ids
// that do not exist. Each case carries the evidence; the description is the message a user sees.

/// What went wrong while loading a vocabulary or turning tokens back into text.
public enum TokenizerError: Error, CustomStringConvertible, Equatable {
    /// `tokenizer.ggml.model` names a tokenizer family we do not implement.
    case unsupportedModel(source: String, model: String)
    /// A required metadata key is absent.
    case missingKey(source: String, key: String)
    /// A metadata key holds a value of the wrong GGUF type.
    case wrongType(source: String, key: String, expected: String, found: String)
    /// An array that must have one entry per token has another length.
    case lengthMismatch(source: String, key: String, expected: Int, found: Int)
    /// The vocabulary has no tokens at all.
    case emptyVocabulary(source: String)
    /// A special token id key points outside the vocabulary.
    case specialTokenOutOfRange(source: String, key: String, id: Int, vocabularySize: Int)
    /// The vocabulary asks for a BOS/EOS token to be added but does not say which.
    case missingSpecialToken(source: String, key: String, reason: String)
    /// `tokenizer.ggml.pre` names a pre-tokenizer we do not implement.
    case unsupportedPreTokenizer(source: String, name: String, supported: [String])
    /// A token id passed for decoding is not in the vocabulary.
    case tokenOutOfRange(Int, vocabularySize: Int)

    public var description: String {
        switch self {
        case let .unsupportedModel(source, model):
            return "\(source): tokenizer.ggml.model is '\(model)'; supported tokenizers are 'gpt2' (byte-level BPE) and 'llama' (SentencePiece)"
        case let .missingKey(source, key):
            return "\(source): metadata key \(key) is missing; the tokenizer needs it"
        case let .wrongType(source, key, expected, found):
            return "\(source): metadata key \(key): expected \(expected), found \(found)"
        case let .lengthMismatch(source, key, expected, found):
            return "\(source): \(key) has \(found) entries, expected one per token (\(expected))"
        case let .emptyVocabulary(source):
            return "\(source): tokenizer.ggml.tokens is empty"
        case let .specialTokenOutOfRange(source, key, id, size):
            return "\(source): \(key) = \(id) is outside the vocabulary (\(size) tokens, ids 0...\(size - 1))"
        case let .missingSpecialToken(source, key, reason):
            return "\(source): \(reason), but \(key) is not set"
        case let .unsupportedPreTokenizer(source, name, supported):
            return "\(source): tokenizer.ggml.pre is '\(name)', which is not supported; supported pre-tokenizers: \(supported.joined(separator: ", "))"
        case let .tokenOutOfRange(id, size):
            return "token id \(id) is out of range: the vocabulary has \(size) tokens (ids 0...\(size - 1))"
        }
    }
}
