// `probity chat-template`: prints the prompt a model's chat template makes of a conversation,
// exactly as it would be tokenized, so users can see what the model is given.

import ArgumentParser
import Foundation
import ProbityFormats
import ProbityLM

struct ChatTemplateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat-template",
        abstract: "Print the prompt a model's chat template makes of a conversation.",
        discussion: """
            The prompt is written to standard output byte for byte as the template renders it, with \
            no newline added, so `probity chat-template ... > prompt.txt` holds exactly the text the \
            model is given. The format comes from the model's tokenizer.chat_template unless \
            --chat-format names one (\(ChatFormat.knownNames)).
            """)

    @OptionGroup var modelArgument: ModelArgument
    var model: String { modelArgument.model }

    @Option(help: ArgumentHelp(
        "A JSON file of messages: an array of {\"role\": ..., \"content\": ...} objects, or {\"messages\": [...]}.",
        valueName: "file.json"))
    var messages: String

    @OptionGroup var chatFormatOption: ChatFormatOption
    var chatFormat: String? { chatFormatOption.chatFormat }

    @Flag(name: .customLong("no-generation-prompt"),
          help: "Leave out the assistant header that asks the model to answer.")
    var noGenerationPrompt = false

    func run() throws {
        let conversation = try ChatMessage.load(messagesFile: messages)
        let gguf = try GGUFFile(path: ModelLocator.resolve(model))
        let format = try ChatTemplate.format(for: gguf, override: chatFormat)
        let prompt = try format.render(conversation, addGenerationPrompt: !noGenerationPrompt)
        FileHandle.standardOutput.write(Data(prompt.utf8))
    }
}
