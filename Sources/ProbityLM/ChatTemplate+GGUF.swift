// Choosing a model's chat format: an explicit override wins; otherwise the GGUF's own
// `tokenizer.chat_template` is recognised (ChatFormat.detect). No template and no override is an error.

import ProbityFormats

/// How a model's chat prompts are written.
public enum ChatTemplate {
    /// The chat format for `gguf`: the one named by `override` (as `--chat-format` gives it), else
    /// the one its `tokenizer.chat_template` renders. Unknown names, unrecognised templates and
    /// models without a template are `GenerationError`s that name the override and the known formats.
    public static func format(for gguf: GGUFFile, override: String?) throws -> ChatFormat {
        if let override { return try ChatFormat.named(override) }
        guard let template = try gguf.optionalString(GGUFKey.chatTemplate) else {
            throw GenerationError.modelHasNoTemplate(path: gguf.path)
        }
        return try ChatFormat.detect(template: template)
    }
}
