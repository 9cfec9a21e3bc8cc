// `probity sae`: the sparse-autoencoder command group (training and evaluation).

import ArgumentParser

struct SAE: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sae",
        abstract: "Train and evaluate sparse autoencoders on a model's activations.",
        subcommands: [SAETrain.self, SAEEval.self])
}
