// The architecture-neutral session layer on a pass that computes nothing: chunking, the logits
// request, partial passes, hook gating, origins and the input checks, as any architecture gets them.

import Testing
@testable import ProbityLM

/// A forward pass with no math: it records the chunks it is given, calls hooks at every point with
/// one zeroed buffer, and writes each logits row full of its own position.
private final class RecordingPass: ForwardPass {
    struct Seen: Equatable {
        var positions: Range<Int>
        var blocks: Range<Int>
        var runsFinal: Bool
        var logitsRows: Range<Int>?
    }
    let vocab: Int
    var seen: [Seen] = []
    private let buffer: UnsafeMutablePointer<Float>

    init(vocab: Int, width: Int, rows: Int) {
        self.vocab = vocab
        buffer = .allocate(capacity: width * rows)
        buffer.initialize(repeating: 0, count: width * rows)
    }

    deinit { buffer.deallocate() }

    /// The positions a fork copied into this pass's cache, and from which pass.
    var copied: (from: ObjectIdentifier, positions: Int)?

    func copyCache(from other: RecordingPass, positions: Int) {
        copied = (ObjectIdentifier(other), positions)
    }

    func run(_ chunk: ForwardChunk) {
        seen.append(Seen(positions: chunk.positions, blocks: chunk.blocks, runsFinal: chunk.runsFinal,
                         logitsRows: chunk.logits?.rows))
        chunk.hook(.embed, buffer)
        for l in chunk.blocks {
            for point in HookPoint.points(ofBlock: l) { chunk.hook(point, buffer) }
        }
        guard chunk.runsFinal else { return }
        chunk.hook(.finalNormalized, buffer)
        if let (rows, out) = chunk.logits {
            for (i, r) in rows.enumerated() {
                (out + i * vocab).update(repeating: Float(chunk.start + r), count: vocab)
            }
        }
    }
}

@Suite struct ModelSessionTests {
    let info = ModelInfo(architecture: "none", blockCount: 3, width: 4, vocabularySize: 5, contextLength: 2048)

    private func session(capacity: Int) throws -> ModelSession<RecordingPass> {
        try ModelSession(info: info, capacity: capacity, pool: nil) { _ in
            RecordingPass(vocab: info.vocabularySize, width: info.width, rows: sessionChunkSize)
        }
    }

    /// Each logits row's value (every entry of a row is its position).
    private func positions(_ logits: [Float]) -> [Int] {
        stride(from: 0, to: logits.count, by: info.vocabularySize).map { Int(logits[$0]) }
    }

    @Test func aLongPromptRunsInChunksAndLogitsComeFromTheRowsAsked() throws {
        let s = try session(capacity: 1200)
        let tokens = (0..<1100).map { $0 % 5 }
        let logits = try s.forward(tokens, origins: nil, hooks: nil, logits: .from(700))
        #expect(s.pass.seen.map(\.positions) == [0..<512, 512..<1024, 1024..<1100])
        #expect(s.pass.seen.map(\.logitsRows) == [nil, 188..<512, 0..<76])
        #expect(positions(logits) == Array(700..<1100))
        #expect(s.length == 1100 && s.tokens == tokens)

        let last = try s.forward([1, 2], origins: nil, hooks: nil, logits: .last)
        #expect(positions(last) == [1101])
        #expect(try s.forward([3], origins: nil, hooks: nil, logits: .none).isEmpty)
        #expect(positions(try s.forward([4, 0, 1], origins: nil, hooks: nil, logits: .all)) == [1103, 1104, 1105])
        #expect(try s.forward([2], origins: nil, hooks: nil, logits: .from(1)).isEmpty)
        #expect(s.pass.seen.allSatisfy { $0.blocks == 0..<3 && $0.runsFinal })
    }

    @Test func aForkHoldsItsParentsPositionsAndGoesOnAlone() throws {
        let parent = try session(capacity: 8)
        _ = try parent.forward([1, 2, 3], origins: nil, hooks: nil, logits: .last)
        let fork = try #require(try parent.fork(capacity: 6) as? ModelSession<RecordingPass>)
        #expect(fork.length == 3 && fork.tokens == [1, 2, 3] && fork.capacity == 6)
        #expect(fork.pass.copied?.from == ObjectIdentifier(parent.pass) && fork.pass.copied?.positions == 3)
        #expect(fork.pass !== parent.pass)
        #expect(positions(try fork.forward([4, 0], origins: nil, hooks: nil, logits: .all)) == [3, 4])
        #expect(fork.pass.seen.map(\.positions) == [3..<5])
        #expect(parent.length == 3 && parent.pass.seen.map(\.positions) == [0..<3])
        #expect(try parent.fork(capacity: nil).capacity == 8)
        #expect(throws: ModelError.contextOverflow(needed: 3, capacity: 2)) { try parent.fork(capacity: 2) }
        #expect(throws: ModelError.contextOverflow(needed: 7, capacity: 6)) {
            try fork.forward([1, 1], origins: nil, hooks: nil, logits: .none)
        }
    }

    @Test func hooksSeeTheChunkTheirPositionsAndOrigins() throws {
        let s = try session(capacity: 8)
        let hooks = HookSet()
        var seen: [(Range<Int>, [TokenOrigin], [Int])] = []
        hooks.attach(at: .residMid(1)) { seen.append(($0.positions, Array($0.origins), Array($0.tokens))) }
        _ = try s.forward([1, 2, 3], origins: nil, hooks: hooks, logits: .last)
        _ = try s.forward([4], origins: [.generated], hooks: hooks, logits: .last)
        #expect(seen.map(\.0) == [0..<3, 3..<4])
        #expect(seen.map(\.1) == [[.prompt, .prompt, .prompt], [.generated]])
        #expect(seen.map(\.2) == [[1, 2, 3], [4]])
    }

    @Test func aPartialPassStopsAtItsPointAndKeepsNothing() throws {
        let s = try session(capacity: 8)
        _ = try s.forward([1, 2], origins: nil, hooks: nil, logits: .none)
        let hooks = HookSet()
        var called: [HookPoint] = []
        for point in HookPoint.all(blocks: 3) { hooks.attach(at: point) { called.append($0.point) } }
        try s.forward([3, 4, 0], origins: nil, hooks: hooks, through: .residMid(1))
        // hook_embed, block 0's five, then block 1's as far as resid_mid.
        #expect(called == Array(HookPoint.all(blocks: 3).prefix(9)) && called.last == .residMid(1))
        #expect(s.pass.seen.last == .init(positions: 2..<5, blocks: 0..<2, runsFinal: false, logitsRows: nil))
        #expect(s.length == 2 && s.tokens == [1, 2])

        called = []
        try s.forward([3], origins: nil, hooks: hooks, through: .finalNormalized)
        #expect(called == HookPoint.all(blocks: 3))
        #expect(s.pass.seen.last == .init(positions: 2..<3, blocks: 0..<3, runsFinal: true, logitsRows: nil))
        #expect(throws: ModelError.unknownHookPoint("blocks.3.hook_resid_pre", blocks: 3)) {
            try s.forward([3], origins: nil, hooks: nil, through: .residPre(3))
        }
    }

    @Test func inputIsCheckedBeforeAnythingRuns() throws {
        let s = try session(capacity: 4)
        #expect(throws: ModelError.contextOverflow(needed: 5, capacity: 4)) {
            try s.forward([0, 1, 2, 3, 4], origins: nil, hooks: nil, logits: .last)
        }
        #expect(throws: ModelError.tokenOutOfRange(5, vocabularySize: 5)) {
            try s.forward([0, 5], origins: nil, hooks: nil, logits: .last)
        }
        #expect(throws: ModelError.originsCount(expected: 2, found: 1)) {
            try s.forward([0, 1], origins: [.prompt], hooks: nil, logits: .last)
        }
        let hooks = HookSet()
        hooks.attach(at: .mlpOut(7)) { _ in }
        #expect(throws: ModelError.unknownHookPoint("blocks.7.hook_mlp_out", blocks: 3)) {
            try s.forward([0], origins: nil, hooks: hooks, logits: .last)
        }
        #expect(s.pass.seen.isEmpty && s.length == 0)
        #expect(throws: ModelError.contextOverflow(needed: 4096, capacity: 2048)) { try session(capacity: 4096) }
    }

    /// A prompt run as two calls, one step: the first call's last chunk tells hooks where the step
    /// ends, its earlier chunks their own ends; a step end the rest cannot reach in one chunk throws.
    @Test func theFirstPartOfASplitStepSeesTheStepsEnd() throws {
        let s = try session(capacity: 1200)
        var ends: [Range<Int>: Int] = [:]
        let hooks = HookSet()
        hooks.attach(at: .embed) { acts in ends[acts.positions] = acts.stepEnd }
        _ = try s.forward(Array(repeating: 1, count: 1030), origins: nil, hooks: hooks, logits: .none, stepEnd: 1100)
        _ = try s.forward(Array(repeating: 1, count: 70), origins: nil, hooks: hooks, logits: .last)
        #expect(ends == [0..<512: 512, 512..<1024: 1024, 1024..<1030: 1100, 1030..<1100: 1100])
        #expect(s.pass.seen.map(\.positions) == [0..<512, 512..<1024, 1024..<1030, 1030..<1100])
        let t = try session(capacity: 1200)
        #expect(throws: ModelError.badStepEnd(1600, callEnd: 1030, chunkRows: 512)) {
            try t.forward(Array(repeating: 1, count: 1030), origins: nil, hooks: nil, logits: .none, stepEnd: 1600)
        }
        #expect(throws: ModelError.badStepEnd(20, callEnd: 30, chunkRows: 512)) {
            try t.forward(Array(repeating: 1, count: 30), origins: nil, hooks: nil, logits: .none, stepEnd: 20)
        }
        #expect(t.length == 0)
    }
}
