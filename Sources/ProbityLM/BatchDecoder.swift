// Batched decode: sessions of one model stepped together, one position each per step, as a
// server's continuous batching or an audit's case variants need. Sequences join and leave freely:
// a step runs exactly the sessions it is given. Each keeps its own positions, KV cache, hooks and
// interventions, and gets the logits bit for bit as its own `forward([token])` would give them.
// Architectures whose block fuses (LlamaModel+Batch.swift) read every weight once per step for all
// sequences; the others run the sequences one after another behind the same interface.

import ProbityTensor

/// One sequence's position in a batched step.
public struct DecodeRequest {
    public var session: InferenceSession
    public var token: Int
    public var origin: TokenOrigin
    /// Hooks for this sequence only (interventions, monitors); nil for none.
    public var hooks: HookSet?
    /// Whether the step computes this position's logits.
    public var wantsLogits: Bool

    public init(session: InferenceSession, token: Int, origin: TokenOrigin = .generated, hooks: HookSet? = nil,
                wantsLogits: Bool = true) {
        self.session = session
        self.token = token
        self.origin = origin
        self.hooks = hooks
        self.wantsLogits = wantsLogits
    }
}

/// An architecture's fused step over several of its sessions.
protocol BatchStepper: AnyObject {
    /// Runs one position of each request (already checked: distinct sessions with room, tokens in
    /// the vocabulary, hooks at existing points) and returns each one's logits ([] when not asked).
    /// Throws `BatchError.foreignSession` before changing anything if a session is not this model's.
    func step(_ requests: [DecodeRequest]) throws -> [[Float]]
}

/// A model whose sessions can be stepped in one fused forward.
protocol BatchSteppingModel: LanguageModel {
    func makeBatchStepper() -> BatchStepper
}

/// Steps sessions of one model together. Not thread-safe: one step at a time (it holds scratch).
public final class BatchDecoder {
    public let model: any LanguageModel
    /// Whether a step runs all its sequences in one forward (weights read once per step); if not,
    /// it runs them one after another, with the same results.
    public let fusesBatches: Bool
    private let stepper: BatchStepper?

    public init(model: any LanguageModel) {
        self.model = model
        stepper = (model as? any BatchSteppingModel)?.makeBatchStepper()
        fusesBatches = stepper != nil
    }

    /// Runs `requests[i].token` at the next position of `requests[i].session` for every i, calling
    /// that request's hooks, and returns each request's logits (vocabulary-size; [] when not
    /// asked), bit-identical to `session.forward([token], origins: [origin], hooks:, logits: .last)`.
    /// Bad input (a session twice, one full, a token outside the vocabulary, a hook at a point the
    /// model lacks, a session of another model) throws before any session changes.
    public func step(_ requests: [DecodeRequest]) throws -> [[Float]] {
        var seen = Set<ObjectIdentifier>()
        for (i, r) in requests.enumerated() {
            guard seen.insert(ObjectIdentifier(r.session)).inserted else { throw BatchError.repeatedSession(index: i) }
            guard r.session.info == model.info else { throw BatchError.foreignSession(index: i) }
            try r.session.checkStep(token: r.token, hooks: r.hooks)
        }
        guard !requests.isEmpty else { return [] }
        if let stepper { return try stepper.step(requests) }
        return try requests.map { r in
            try r.session.forward([r.token], origins: [r.origin], hooks: r.hooks, logits: r.wantsLogits ? .last : .none)
        }
    }
}

/// Requests a batched step refuses.
public enum BatchError: Error, CustomStringConvertible, Equatable {
    case repeatedSession(index: Int)
    case foreignSession(index: Int)

    public var description: String {
        switch self {
        case let .repeatedSession(i):
            return "batched step: request \(i) repeats a session already in the step (one position per session per step)"
        case let .foreignSession(i):
            return "batched step: request \(i)'s session belongs to another model than the batch's"
        }
    }
}
