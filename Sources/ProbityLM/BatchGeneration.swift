// Continuous batching of generations: sequences of one model, each with its own prompt already run,
// sampler, stop strings, hooks and stop predicate, decoded together one token each per step through
// `BatchDecoder` (weights read once per step for all of them). Sequences join between steps and
// leave when they end. Each gets the tokens and text `Generator` would give it alone: the streams
// are the same `GenerationStream`s, and a batched step's logits have the bits of a lone step's.

import Foundation

/// Generations stepped together. Not thread-safe: one step at a time.
public final class BatchGenerator {
    /// One sequence in the batch.
    private struct Sequence {
        var session: InferenceSession
        var logits: [Float]
        var stream: GenerationStream
        var hooks: HookSet?
        var shouldStop: () -> Bool
        var interrupted: () -> Bool
        var onText: (String) -> Void
        var prefillSeconds: Double
        var joined: ContinuousClock.Instant
    }

    public let model: any LanguageModel
    private let decoder: BatchDecoder
    private var sequences: [Int: Sequence] = [:]
    /// Ids in the order they joined: a step runs them in this order.
    private var order: [Int] = []
    private var finished: [Int: GenerationResult] = [:]
    private var nextID = 0
    private let clock = ContinuousClock()

    public init(model: any LanguageModel) {
        self.model = model
        decoder = BatchDecoder(model: model)
    }

    /// Sequences still generating.
    public var activeCount: Int { order.count }

    /// Adds a sequence whose `session` has just run `stream`'s prompt, `logits` being its last
    /// position's; `hooks` are attached at its every step and `shouldStop` is asked after each.
    /// `interrupted` is asked before each of its tokens is sampled (as `step`'s own, for this
    /// sequence alone: a client that went away, say) and `onText` receives its text as it completes.
    /// Returns its id, by which `result(_:)` hands back what it generated.
    public func add(session: InferenceSession, logits: [Float], stream: GenerationStream, hooks: HookSet?,
                    prefillSeconds: Double = 0, shouldStop: @escaping () -> Bool = { false },
                    interrupted: @escaping () -> Bool = { false }, onText: @escaping (String) -> Void = { _ in }) -> Int {
        let id = nextID
        nextID += 1
        sequences[id] = Sequence(session: session, logits: logits, stream: stream, hooks: hooks, shouldStop: shouldStop,
                                 interrupted: interrupted, onText: onText, prefillSeconds: prefillSeconds, joined: clock.now)
        order.append(id)
        return id
    }

    /// Samples every active sequence's next token and runs those that continue in one batched step.
    /// `interrupted` is asked once, before sampling, for the whole batch. Returns the ids of the
    /// sequences that ended (their results are ready).
    @discardableResult
    public func step(interrupted: () -> Bool = { false }) throws -> [Int] {
        let stop = interrupted()
        var ended: [Int] = []
        var running: [(id: Int, token: Int)] = []
        for id in order {
            guard var s = sequences[id] else { continue }
            let token = try s.stream.next(logits: s.logits, hasRoom: s.session.length < s.session.capacity,
                                          interrupted: { stop || s.interrupted() }, onText: s.onText)
            s.logits = []
            sequences[id] = s
            if let token { running.append((id, token)) } else { ended.append(id) }
        }
        let requests = running.compactMap { r in
            sequences[r.id].map { DecodeRequest(session: $0.session, token: r.token, origin: .generated, hooks: $0.hooks) }
        }
        let logits = try decoder.step(requests)
        for (r, row) in zip(running, logits) {
            guard var s = sequences[r.id] else { continue }
            s.logits = row
            s.stream.stepped(halted: s.shouldStop())
            sequences[r.id] = s
        }
        for id in ended {
            guard var s = sequences.removeValue(forKey: id) else { continue }
            finished[id] = s.stream.finish(positions: s.session.length, prefillSeconds: s.prefillSeconds,
                                           decodeSeconds: (clock.now - s.joined).seconds, onText: s.onText)
        }
        order.removeAll { sequences[$0] == nil }
        return ended
    }

    /// Steps until every sequence has ended.
    public func runAll(interrupted: () -> Bool = { false }) throws {
        while activeCount > 0 { try step(interrupted: interrupted) }
    }

    /// The result of a sequence that ended, handed over once (nil while it runs or after).
    public func result(_ id: Int) -> GenerationResult? {
        finished.removeValue(forKey: id)
    }
}
