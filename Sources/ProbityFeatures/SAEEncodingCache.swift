// One encoding per SAE per hook point per forward step, shared by everything that reads latents
// there (rule detection, monitors, interventions): the encoder is the costly part of a hook.

import ProbityLM

/// The current step's SAE encodings at each hook point. A reader asks for an SAE's encoding of the
/// activations it is handed; the first request of a step encodes, later ones at the same point and
/// step get the same result. A reader that edits the activations calls `activationsEdited`, so
/// readers after it encode the edited values, as each would if it encoded on its own.
public final class SAEEncodingCache {
    private struct Key: Hashable {
        let sae: ObjectIdentifier
        let point: HookPoint
    }

    private var entries: [Key: (step: UInt64, encoding: SAEEncoding)] = [:]
    /// How many encodings have been computed (not served from the cache).
    public private(set) var encodeCount = 0

    public init() {}

    /// `sae`'s encoding of `acts` as they are now, on the forward pass's pool.
    public func encoding(_ sae: SparseAutoencoder, of acts: HookActivations) -> SAEEncoding {
        let key = Key(sae: ObjectIdentifier(sae), point: acts.point)
        if let e = entries[key], e.step == acts.step { return e.encoding }
        let e = sae.encode(acts.values, count: acts.count, pool: acts.pool)
        entries[key] = (acts.step, e)
        encodeCount += 1
        return e
    }

    /// Forgets the encodings at `acts.point`: the activations there have just been edited.
    public func activationsEdited(_ acts: HookActivations) {
        for key in entries.keys where key.point == acts.point { entries[key] = nil }
    }
}
