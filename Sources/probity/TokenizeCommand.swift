// `probity tokenize` and `probity detokenize`: the model's tokenizer from the command line, with
// llama.cpp's defaults (llama_tokenize / llama_detokenize).

import ArgumentParser
import Foundation
import ProbityFormats
import ProbityLM

struct Tokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn text into the model's token ids, as llama.cpp's llama_tokenize does.",
        discussion: """
            Defaults match llama.cpp: BOS/EOS are added when the model's GGUF asks for them \
            (tokenizer.ggml.add_bos_token, add_eos_token), and special-token text such as \
            <|im_start|> becomes that token (parse_special). --no-special tokenizes such text as \
            plain characters instead; --add-bos puts BOS first even when the model does not ask for it.
            Output: one line per token, "id<TAB>piece" (tab, CR, LF and bytes that are not UTF-8 escaped); with --json one \
            object {"pieces": [...], "tokens": [...]}. A .jsonl --file holds one {"text": ...} per \
            line and gives one result per line (with --json) or a blank line between cases.
            """)

    @OptionGroup var modelArgument: ModelArgument
    var model: String { modelArgument.model }

    @Option(help: "The text to tokenize.")
    var text: String?

    @Option(help: "A UTF-8 text file to tokenize, or a .jsonl file of {\"text\": ...} lines.")
    var file: String?

    @Flag(help: "Tokenize special-token text as plain text (parse_special = false).")
    var noSpecial = false

    @Flag(help: "Turn special-token text into special tokens (the default; parse_special = true).")
    var parseSpecial = false

    @Flag(help: "Start with the BOS token even if the model does not ask for one.")
    var addBos = false

    @OptionGroup var output: JSONOutput
    var json: Bool { output.json }

    func validate() throws {
        if (text == nil) == (file == nil) { throw ValidationError("give exactly one of --text and --file") }
        if noSpecial && parseSpecial { throw ValidationError("--no-special and --parse-special contradict each other") }
    }

    func run() throws {
        let tokenizer = try Tokenizer(gguf: GGUFFile(path: ModelLocator.resolve(model)))
        if let text {
            try emit(tokenizer, text)
            return
        }
        guard let file else { return }
        guard let data = try WholeFile.contents(file, what: "text file", limit: FileSizeLimits.textData) else {
            throw ValidationError("\(file): cannot read the file")
        }
        guard let content = String(data: data, encoding: .utf8) else {
            throw ValidationError("\(file): not valid UTF-8")
        }
        guard file.hasSuffix(".jsonl") else {
            try emit(tokenizer, content)
            return
        }
        var first = true
        for (index, line) in StrictJSON.lines(content).enumerated() {
            if line.allSatisfy(\.isWhitespace) { continue }
            let object = try StrictJSON.object(line: line, of: content, number: index + 1, path: file)
            guard let dict = object as? [String: Any], let text = dict["text"] as? String else {
                throw ValidationError("\(file):\(index + 1): expected a JSON object with a string \"text\"")
            }
            if !json && !first { print("") }  // a blank line between cases in the text output
            first = false
            try emit(tokenizer, text)
        }
    }

    private func emit(_ tokenizer: Tokenizer, _ text: String) throws {
        var tokens = tokenizer.encode(text, addSpecial: true, parseSpecial: !noSpecial)
        if addBos {
            guard let bos = tokenizer.bosID else { throw ValidationError("--add-bos: the model has no BOS token") }
            if tokens.first != bos || !tokenizer.addsBOS { tokens.insert(bos, at: 0) }
        }
        let pieces = try tokens.map { try tokenizer.piece($0) }
        if json {
            let object: [String: Any] = ["pieces": pieces, "tokens": tokens]
            let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else {
            for (id, piece) in zip(tokens, pieces) { print("\(id)\t\(Self.escaped(piece))") }
        }
    }

    /// A piece on one line: tab, CR and LF written as escapes (as invalid bytes already are).
    static func escaped(_ piece: String) -> String {
        var out = ""
        for c in piece.unicodeScalars {
            switch c {
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }
}

struct Detokenize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Turn token ids back into text, as llama.cpp's llama_detokenize does.",
        discussion: """
            Special tokens are written as their text. The text is printed exactly, with no newline \
            added. An id outside the vocabulary is an error (exit 2).
            """)

    @Argument(parsing: .allUnrecognized, help: "[MODEL] ids...: an optional .gguf path or 'default', then token ids.")
    var arguments: [String] = []

    func run() throws {
        var args = arguments
        var model = "default"
        if let first = args.first, Int(first) == nil {
            model = first
            args.removeFirst()
        }
        let ids = try args.map { arg -> Int in
            guard let id = Int(arg) else { throw ValidationError("'\(arg)' is not a token id") }
            return id
        }
        let tokenizer = try Tokenizer(gguf: GGUFFile(path: ModelLocator.resolve(model)))
        let text = try tokenizer.decode(ids)
        FileHandle.standardOutput.write(Data(text.utf8))
    }
}
