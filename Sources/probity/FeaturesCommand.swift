// `probity features`: the feature-pack command group.

import ArgumentParser

struct Features: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect feature packs, read feature activations, derive and export steering directions.",
        subcommands: [FeaturesInfo.self, FeaturesActivations.self, FeaturesStats.self, FeaturesDerive.self,
                       FeaturesExportControlVector.self])
}
