// Which errors are the user's input (exit code 2, docs/DESIGN.md), and how the command line words
// the library errors whose remedy is one of its flags: libraries describe errors in their own terms.

import ProbityAudit
import ProbityFeatures
import ProbityFormats
import ProbityHTML
import ProbityLM
import ProbityRules
import ProbityTensor
import ProbityTraining

/// An error caused by what the user handed a command: a file, a rule, an argument. The command
/// exits 2 with its one message; any other error is internal (exit 3). The library error types are
/// all bad input: each names what was wrong, where, and what was expected.
protocol BadInput: Error, CustomStringConvertible {}

extension TensorError: BadInput {}
extension FormatError: BadInput {}
extension JSONSyntaxError: BadInput {}
extension FileError: BadInput {}
extension ModelError: BadInput {}
extension LoadError: BadInput {}
extension ModelLocatorError: BadInput {}
extension BenchmarkError: BadInput {}
extension TokenizerError: BadInput {}
extension GenerationError: BadInput {}
extension FeatureError: BadInput {}
extension TrainingError: BadInput {}
extension RulesError: BadInput {}
extension AuditError: BadInput {}
extension HTMLError: BadInput {}
extension DiffError: BadInput {}

/// The flag that sets each training setting a library error names.
private let trainingFlags: [String: String] = [
    "latents": "--latents", "k": "--k", "batch size": "--batch-size", "tokens": "--tokens",
    "learning rate": "--lr", "dead after": "--dead-after", "corpora": "--corpus", "window": "--window",
    "contexts per latent": "--contexts", "tokens before": "--before", "tokens after": "--after",
    "context": "--context", "weight type": "--dtype", "checkpoint every": "--checkpoint-every",
]

/// The message a user sees for `error`: the library's own, except where the remedy or the setting
/// at fault is a flag, which the message then names.
func commandLineMessage(_ error: any BadInput) -> String {
    switch error {
    case LoadError.badThreadCount(let n):
        return "--threads: expected 1 to 1024, found \(n)"
    case GenerationError.unrecognisedTemplate(let excerpt, let family):
        let looks = family.map { " It looks like a \($0) template, but not a variant Probity renders exactly." } ?? ""
        return "the model's chat template is not one Probity recognises: \"\(excerpt)\".\(looks)"
            + " Pass --chat-format NAME to choose one (known formats: \(ChatFormat.knownNames))"
    case GenerationError.modelHasNoTemplate(let path):
        return "\(path): the model has no chat template (tokenizer.chat_template);"
            + " pass --chat-format NAME (known formats: \(ChatFormat.knownNames))"
    case FeatureError.noChatFormat(let path, let line):
        return "\(path):\(line): chat messages need the model's chat template, and it has none (pass --chat-format)"
    case FeatureError.controlVectorArgument(let argument):
        return "--control-vector: '\(argument)': expected FILE.gguf or FILE.gguf:SCALE"
    case FeatureError.modelMismatch:
        return "\(error) (pass --allow-model-mismatch to use it anyway; the result records it)"
    case FeatureError.noContexts(let path):
        return "\(path): the labels hold no top contexts to search (run `probity features stats PACK --corpus FILE --tokens N` first)"
    case ModelError.adapterArgument(let argument):
        return "--lora: '\(argument)': expected FILE.gguf or FILE.gguf:SCALE with a finite SCALE"
    case AuditError.badShard(let text):
        return "--shard: expected I/N with 1 ≤ I ≤ N, or auto, found '\(text)'"
    case AuditError.badShardEnvironment(let variable, let expected, let found):
        return "--shard auto: \(variable): expected \(expected), found \(found) (docs/audits.md, \"Shards across machines\")"
    case TrainingError.badArgument(let name, let expected, let found):
        return "\(trainingFlags[name] ?? name): expected \(expected), found \(found)"
    default:
        return error.description
    }
}
