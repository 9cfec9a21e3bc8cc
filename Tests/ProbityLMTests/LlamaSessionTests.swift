// KV-cache consistency, hook semantics and bad input for the Llama forward pass.

import Foundation
import Testing
@testable import ProbityLM
import ProbityTestSupport

@Suite(.serialized) struct LlamaSessionTests {
    let model: LlamaModel
    let tokens: [Int]

    init() throws {
        model = try Reference.defaultModel()
        guard let chat = try Reference.variants().first(where: { $0.prompt == "chat" && $0.variant == "default" }) else {
            throw FixtureError("no chat/default variant")
        }
        tokens = chat.tokens
    }

    /// Prefill of the whole prompt and token-by-token decode agree (rel L2 ≤ 1e-4) at every position.
    @Test func prefillMatchesTokenByTokenDecode() throws {
        let vocab = model.info.vocabularySize
        let batch = try model.makeSession(capacity: tokens.count).forward(tokens, logits: .all)
        let stepwise = try model.makeSession(capacity: tokens.count)
        for (i, t) in tokens.enumerated() {
            let row = try stepwise.forward([t], logits: .last)
            let rel = relativeL2(row, Array(batch[(i * vocab)..<((i + 1) * vocab)]))
            #expect(rel <= 1e-4, "position \(i): rel L2 \(rel)")
        }
        #expect(stepwise.length == tokens.count && stepwise.tokens == tokens)
    }

    /// `.from(k)` gives the rows of `.all` from position k on (the head then runs on fewer rows,
    /// which may take another product path, so within rel L2 1e-5); from the last position it is `.last`.
    @Test func logitsFromAPositionAreTheTailOfAll() throws {
        let vocab = model.info.vocabularySize, n = tokens.count
        let all = try model.makeSession(capacity: n).forward(tokens, logits: .all)
        for k in [0, 3, n - 20, n - 1] {
            let tail = try model.makeSession(capacity: n).forward(tokens, logits: .from(k))
            #expect(tail.count == (n - k) * vocab, "from \(k)")
            for j in [0, n - k - 1] {
                let rel = relativeL2(Array(tail[(j * vocab)..<((j + 1) * vocab)]), Array(all[((k + j) * vocab)..<((k + j + 1) * vocab)]))
                #expect(rel <= 1e-5, "from \(k), row \(j): rel L2 \(rel)")
            }
        }
        let last = try model.makeSession(capacity: n).forward(tokens, logits: .last)
        #expect(try model.makeSession(capacity: n).forward(tokens, logits: .from(n - 1)) == last)
        #expect(try model.makeSession(capacity: n).forward(tokens, logits: .from(n + 2)).isEmpty)
    }

    /// Split prefill (prompt in two calls) equals one call.
    @Test func chunkedPrefillMatches() throws {
        let whole = try model.makeSession(capacity: tokens.count).forward(tokens)
        let split = try model.makeSession(capacity: tokens.count)
        _ = try split.forward(Array(tokens[..<17]), logits: .none)
        let rest = try split.forward(Array(tokens[17...]))
        #expect(relativeL2(rest, whole) <= 1e-4)
    }

    @Test func truncateReusesAPrefix() throws {
        let session = try model.makeSession(capacity: tokens.count)
        let first = try session.forward(tokens)
        session.truncate(to: 10)
        #expect(session.length == 10)
        let again = try session.forward(Array(tokens[10...]))
        #expect(relativeL2(again, first) <= 1e-4)
    }

    /// A pass through one hook point sees bit-identical activations there, calls no later hook,
    /// and leaves the session as it was (so it can go on with the whole sequence).
    @Test func partialPassMatchesFullPassAtThePoint() throws {
        for point in [HookPoint.embed, .residMid(3), .residPost(15), .residPost(model.info.blockCount - 1), .finalNormalized] {
            func capture(_ into: @escaping ([Float], HookPoint) -> Void) -> HookSet {
                let hooks = HookSet()
                for p in model.info.hookPoints {
                    hooks.attach(at: p) { acts in into(Array(UnsafeBufferPointer(start: acts.values, count: acts.count * acts.width)), acts.point) }
                }
                return hooks
            }
            var full: [Float] = [], partial: [Float] = []
            var partialPoints: [HookPoint] = []
            _ = try model.makeSession(capacity: tokens.count).forward(tokens, hooks: capture { v, p in if p == point { full += v } }, logits: .none)
            let session = try model.makeSession(capacity: tokens.count)
            _ = try session.forward(Array(tokens[..<5]), logits: .none)
            session.truncate(to: 0)
            try session.forward(tokens, origins: nil, hooks: capture { v, p in
                partialPoints.append(p)
                if p == point { partial += v }
            }, through: point)
            #expect(partial == full, "\(point.name)")
            let order = model.info.hookPoints
            #expect(partialPoints.last == point && partialPoints.count == (order.firstIndex(of: point) ?? -1) + 1, "\(point.name)")
            #expect(session.length == 0 && session.tokens.isEmpty)
            let logits = try session.forward(tokens)
            let reference = try model.makeSession(capacity: tokens.count).forward(tokens)
            #expect(logits == reference)
        }
        #expect(throws: ModelError.self) {
            try model.makeSession(capacity: 4).forward([1, 2], origins: nil, hooks: nil, through: .residPost(99))
        }
    }

    /// Hooks that do nothing, at every point, leave the logits bit-identical; adding zero too.
    @Test func identityHooksChangeNothing() throws {
        let plain = try model.makeSession(capacity: tokens.count).forward(tokens)
        let hooks = HookSet()
        var calls: [HookPoint: Int] = [:]
        for point in model.info.hookPoints {
            hooks.attach(at: point) { acts in
                calls[acts.point, default: 0] += 1
                for i in 0..<(acts.count * acts.width) { acts.values[i] += 0 }
            }
        }
        let hooked = try model.makeSession(capacity: tokens.count).forward(tokens, hooks: hooks)
        #expect(hooked == plain)
        #expect(calls.count == 2 + 5 * 30)
        #expect(calls.values.allSatisfy { $0 == 1 })
    }

    /// Hooks see every step: the whole prompt at prefill, then one position per decode step,
    /// with absolute positions, token ids and origins.
    @Test func hooksSeeEveryStep() throws {
        let hooks = HookSet()
        var seen: [(Range<Int>, [Int], [TokenOrigin])] = []
        hooks.attach(at: .residPost(3)) { acts in
            seen.append((acts.positions, Array(acts.tokens), Array(acts.origins)))
        }
        let session = try model.makeSession(capacity: 12)
        _ = try session.forward(Array(tokens[..<10]), hooks: hooks)
        _ = try session.forward([tokens[10]], origins: [.generated], hooks: hooks, logits: .last)
        #expect(seen.count == 2)
        #expect(seen[0].0 == 0..<10 && seen[0].1 == Array(tokens[..<10]) && seen[0].2.allSatisfy { $0 == .prompt })
        #expect(seen[1].0 == 10..<11 && seen[1].1 == [tokens[10]] && seen[1].2 == [.generated])
    }

    /// Editing resid_post of block L changes what comes after it and nothing before it.
    @Test func editingResidPostChangesOnlyLaterPoints() throws {
        func record(editing: Bool) throws -> (before: [Float], after: [Float], logits: [Float]) {
            let hooks = HookSet()
            var before: [Float] = [], after: [Float] = []
            hooks.attach(at: .residMid(12)) { acts in
                before = Array(UnsafeBufferPointer(start: acts.values, count: acts.count * acts.width))
            }
            if editing {
                hooks.attach(at: .residPost(12)) { acts in
                    for i in 0..<(acts.count * acts.width) { acts.values[i] *= 1.5 }
                }
            }
            hooks.attach(at: .residPre(13)) { acts in
                after = Array(UnsafeBufferPointer(start: acts.values, count: acts.count * acts.width))
            }
            let logits = try model.makeSession(capacity: tokens.count).forward(tokens, hooks: hooks)
            return (before, after, logits)
        }
        let clean = try record(editing: false)
        let edited = try record(editing: true)
        #expect(edited.before == clean.before)
        #expect(edited.after != clean.after)
        #expect(zip(edited.after, clean.after).allSatisfy { abs($0 - 1.5 * $1) <= 1e-6 * max(1, abs($0)) })
        #expect(relativeL2(edited.logits, clean.logits) > 1e-3)
    }

    @Test func hookAtMissingBlockIsAnError() throws {
        let hooks = HookSet()
        hooks.attach(at: .residPost(30)) { _ in }
        let session = try model.makeSession(capacity: 4)
        #expect(throws: ModelError.unknownHookPoint("blocks.30.hook_resid_post", blocks: 30)) {
            try session.forward([1, 2], hooks: hooks)
        }
    }

    @Test func promptLongerThanContextIsAnError() throws {
        let session = try model.makeSession(capacity: 8)
        #expect(throws: ModelError.contextOverflow(needed: 9, capacity: 8)) {
            try session.forward(Array(repeating: 42, count: 9))
        }
        #expect(throws: ModelError.contextOverflow(needed: 9000, capacity: 8192)) {
            try model.makeSession(capacity: 9000)
        }
    }

    @Test func tokenOutOfRangeIsAnError() throws {
        let session = try model.makeSession(capacity: 4)
        #expect(throws: ModelError.tokenOutOfRange(49152, vocabularySize: 49152)) {
            try session.forward([1, 49152])
        }
    }
}
