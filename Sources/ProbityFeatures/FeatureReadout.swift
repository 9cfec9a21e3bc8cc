// Reading a feature at one position: an SAE latent's value, the projection of the activations on a
// direction's unit vector, or a probe's logit w·x + b. Detection (the rules runtime), triggers and monitors all read
// through here, so what a rule sees and what steering acts on are the same number.

import ProbityLM

extension FeatureTarget {
    /// The feature's activation at row `r` of `acts`: latent i of the SAE's encoding of the rows
    /// (from `encoding`, which may share or cache it), x·u with u = d/‖d‖ for a direction d, or
    /// w·x + b for a probe.
    public func activation(row r: Int, of acts: HookActivations, encoding: (SparseAutoencoder) -> SAEEncoding) -> Float {
        switch self {
        case let .latent(b, i):
            return encoding(b.sae).latent(i, row: r)
        case .direction(let d):
            return unitProjection(acts.values + r * acts.width, d.vector)
        case .probe(let p):
            return p.logit(acts.values + r * acts.width)
        }
    }
}

/// x·u with u = v/‖v‖ (0 for a zero v), summed in Double.
func unitProjection(_ x: UnsafePointer<Float>, _ v: [Float]) -> Float {
    var dot = 0.0, norm = 0.0
    for j in v.indices {
        dot += Double(x[j]) * Double(v[j])
        norm += Double(v[j]) * Double(v[j])
    }
    return norm > 0 ? Float(dot / norm.squareRoot()) : 0
}
