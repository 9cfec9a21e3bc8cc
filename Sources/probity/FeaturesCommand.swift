// `probity features`: the feature-pack command group.

import ArgumentParser

struct Features: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Inspect feature packs, read feature activations, label and search latents, derive and export steering directions, train probes.",
        subcommands: [FeaturesInfo.self, FeaturesActivations.self, FeaturesStats.self, FeaturesShow.self, FeaturesSearch.self, FeaturesDashboard.self,
                      FeaturesDerive.self, FeaturesTrainProbe.self, FeaturesExportControlVector.self])
}
