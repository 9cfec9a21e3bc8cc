// The architecture-neutral half of a session: positions and tokens so far, checks on a forward
// call's input, prompt chunking, token origins, logits requests, partial passes and the hook table.
// An architecture writes only its forward math, as a `ForwardPass` that runs one chunk at a time.

import ProbityTensor

/// An architecture's forward math over one chunk of positions, owning its KV cache and scratch.
protocol ForwardPass: AnyObject {
    /// Runs `chunk` at `chunk.positions`: stores their keys and values in the cache (overwriting
    /// whatever a truncated session left there), calls `chunk.hook` at every hook point, runs the
    /// blocks in `chunk.blocks`, then, when `chunk.runsFinal`, the final norm and the output head
    /// for the rows `chunk.logits` asks for.
    func run(_ chunk: ForwardChunk)
    /// Makes this pass's cache hold `other`'s keys and values at positions 0 ..< positions.
    func copyCache(from other: Self, positions: Int)
}

/// One chunk of a forward call, as an architecture's pass sees it.
struct ForwardChunk {
    /// The chunk's tokens, at most the session's chunk size.
    let tokens: ArraySlice<Int>
    /// Whether each token is from the prompt or generated.
    let origins: ArraySlice<TokenOrigin>
    /// Absolute positions of the rows; the first is the session's length before this chunk.
    let positions: Range<Int>
    /// The blocks to run: all, or for a partial pass those up to the one holding its last point.
    let blocks: Range<Int>
    /// Whether the final norm runs (and after it the output head, if `logits` asks).
    let runsFinal: Bool
    /// The chunk's rows (0-based, never empty) whose logits were asked for, and where the first
    /// of them goes; rows follow each other, vocabulary-size floats apart. Nil when none were.
    let logits: (rows: Range<Int>, into: UnsafeMutablePointer<Float>)?
    // The session's hook table, with the slots after a partial pass's last point emptied.
    fileprivate let table: [[Hook]?]?
    fileprivate let layout: HookLayout
    fileprivate let width: Int
    fileprivate let pool: ThreadPool?
    /// Where the step ends, for hooks (`HookActivations.stepEnd`); nil: at the chunk's end.
    var stepEnd: Int? = nil

    /// Positions in this chunk.
    var count: Int { tokens.count }
    /// The position of the chunk's first row.
    var start: Int { positions.lowerBound }

    /// Calls the hooks attached at `point` with `values` (`count × width`, row-major), which they
    /// may edit in place. With no hooks attached this is one branch.
    @inline(__always)
    func hook(_ point: HookPoint, _ values: UnsafeMutablePointer<Float>) {
        guard let table, let slot = layout.slot(point), let list = table[slot] else { return }
        let acts = HookActivations(point: point, width: width, count: count, values: values,
                                   positions: positions, tokens: tokens, origins: origins, pool: pool, stepEnd: stepEnd)
        for h in list { h(acts) }
    }
}

/// Positions per pass of the layer loop; a longer prompt runs in chunks of this many.
let sessionChunkSize = 512

/// A session of any architecture: the bookkeeping around the architecture's `ForwardPass`.
final class ModelSession<Pass: ForwardPass>: InferenceSession {
    let info: ModelInfo
    let capacity: Int
    private(set) var length = 0
    private(set) var tokens: [Int] = []
    /// The architecture's forward math, with its cache and scratch.
    let pass: Pass
    private let layout: HookLayout
    private let pool: ThreadPool?
    /// Positions per chunk of a forward call (the pass's scratch holds at most this many).
    let chunkRows: Int
    /// Makes a pass for a session of the given capacity (for forks).
    private let makePass: (_ capacity: Int) -> Pass

    /// A session with room for `capacity` positions (nil: the model's context). `makePass`
    /// receives the capacity its cache must hold.
    init(info: ModelInfo, capacity: Int?, pool: ThreadPool?,
         makePass: @escaping (_ capacity: Int) -> Pass) throws {
        let cap = capacity ?? info.contextLength
        guard cap > 0, cap <= info.contextLength else {
            throw ModelError.contextOverflow(needed: cap, capacity: info.contextLength)
        }
        self.info = info
        self.capacity = cap
        self.pool = pool
        layout = HookLayout(blocks: info.blockCount)
        chunkRows = min(sessionChunkSize, cap)
        pass = makePass(cap)
        self.makePass = makePass
    }

    func fork(capacity: Int?) throws -> InferenceSession {
        let child = try ModelSession(info: info, capacity: capacity ?? self.capacity, pool: pool, makePass: makePass)
        guard length <= child.capacity else {
            throw ModelError.contextOverflow(needed: length, capacity: child.capacity)
        }
        child.pass.copyCache(from: pass, positions: length)
        child.length = length
        child.tokens = tokens
        return child
    }

    func truncate(to newLength: Int) {
        precondition(newLength >= 0, "negative length")
        if newLength < length {
            length = newLength
            tokens.removeSubrange(newLength...)
        }
    }

    func forward(_ input: [Int], origins: [TokenOrigin]?, hooks: HookSet?, logits: LogitsRequest) throws -> [Float] {
        try forward(input, origins: origins, hooks: hooks, logits: logits, throughSlot: nil, stepEnd: nil)
    }

    func forward(_ input: [Int], origins: [TokenOrigin]?, hooks: HookSet?, logits: LogitsRequest,
                 stepEnd: Int) throws -> [Float] {
        let end = length + input.count
        // The step goes on in the next call: this call's last chunk must end where a chunk of
        // the whole step would not (its rows and the next call's are one chunk of the step).
        let chunkStart = input.isEmpty ? length : length + (input.count - 1) / chunkRows * chunkRows
        guard stepEnd >= end, stepEnd - chunkStart <= chunkRows else {
            throw ModelError.badStepEnd(stepEnd, callEnd: end, chunkRows: chunkRows)
        }
        return try forward(input, origins: origins, hooks: hooks, logits: logits, throughSlot: nil, stepEnd: stepEnd)
    }

    func forward(_ input: [Int], origins: [TokenOrigin]?, hooks: HookSet?, through point: HookPoint) throws {
        guard let slot = layout.slot(point) else {
            throw ModelError.unknownHookPoint(point.name, blocks: info.blockCount)
        }
        let before = length
        defer { truncate(to: before) }
        _ = try forward(input, origins: origins, hooks: hooks, logits: .none, throughSlot: slot, stepEnd: nil)
    }

    /// `throughSlot`: stop after the hook point with this slot (nil: the whole model). `stepEnd`:
    /// where the step of the call's last chunk ends (nil: at the chunk's end).
    private func forward(_ input: [Int], origins: [TokenOrigin]?, hooks: HookSet?, logits: LogitsRequest,
                         throughSlot: Int?, stepEnd: Int?) throws -> [Float] {
        let vocab = info.vocabularySize
        guard length + input.count <= capacity else {
            throw ModelError.contextOverflow(needed: length + input.count, capacity: capacity)
        }
        for t in input where t < 0 || t >= vocab {
            throw ModelError.tokenOutOfRange(t, vocabularySize: vocab)
        }
        let origins = origins ?? Array(repeating: .prompt, count: input.count)
        guard origins.count == input.count else {
            throw ModelError.originsCount(expected: input.count, found: origins.count)
        }
        var table = try hooks.map { try $0.slots(blocks: info.blockCount) }
        // A partial pass calls no hook after its last point.
        if let last = throughSlot, var t = table {
            for s in t.indices where s > last { t[s] = nil }
            table = t
        }
        let blocks = throughSlot.map { layout.blocks(through: $0) } ?? 0..<info.blockCount
        let runsFinal = throughSlot.map { $0 >= layout.finalSlot } ?? true
        // The first position (within `input`) whose logits were asked for.
        let firstLogits: Int? = switch logits {
        case .none: nil
        case .last: input.count - 1
        case .all: 0
        case let .from(k): max(0, k)
        }
        let logitsRows = firstLogits.map { max(0, input.count - max(0, $0)) } ?? 0
        var out = [Float](repeating: 0, count: logitsRows * vocab)
        out.withUnsafeMutableBufferPointer { buffer in
            var start = 0
            while start < input.count {
                let n = min(chunkRows, input.count - start)
                // The chunk's rows at or after the first position whose logits were asked for.
                var destination: (rows: Range<Int>, into: UnsafeMutablePointer<Float>)?
                if runsFinal, let k = firstLogits, k < start + n, let base = buffer.baseAddress {
                    let first = max(0, k - start)
                    destination = (first..<n, base + (start + first - k) * vocab)
                }
                pass.run(ForwardChunk(tokens: input[start..<(start + n)], origins: origins[start..<(start + n)],
                                      positions: length..<(length + n), blocks: blocks, runsFinal: runsFinal,
                                      logits: destination, table: table, layout: layout, width: info.width,
                                      pool: pool, stepEnd: start + n == input.count ? stepEnd : nil))
                length += n
                tokens.append(contentsOf: input[start..<(start + n)])
                start += n
            }
        }
        return out
    }
}

extension ModelSession {
    /// Checks one decode position of a batched step as `forward` checks its input and returns its
    /// chunk (the whole model; the batched step places the logits itself), changing nothing. The
    /// caller runs the chunk, then calls `commitStep`.
    func stepChunk(token: Int, origin: TokenOrigin, hooks: HookSet?) throws -> ForwardChunk {
        try checkStep(token: token, hooks: hooks)
        return ForwardChunk(tokens: [token][0..<1], origins: [origin][0..<1], positions: length..<(length + 1),
                            blocks: 0..<info.blockCount, runsFinal: true, logits: nil,
                            table: try hooks.map { try $0.slots(blocks: info.blockCount) }, layout: layout,
                            width: info.width, pool: pool)
    }

    /// The session after a batched step ran `token`'s chunk.
    func commitStep(token: Int) {
        length += 1
        tokens.append(token)
    }
}

extension InferenceSession {
    /// Throws what `forward([token], hooks: hooks, …)` would throw for bad input, changing nothing.
    func checkStep(token: Int, hooks: HookSet?) throws {
        guard length + 1 <= capacity else {
            throw ModelError.contextOverflow(needed: length + 1, capacity: capacity)
        }
        guard token >= 0 && token < info.vocabularySize else {
            throw ModelError.tokenOutOfRange(token, vocabularySize: info.vocabularySize)
        }
        _ = try hooks.map { try $0.slots(blocks: info.blockCount) }
    }
}

extension InferenceSession {
    /// Runs a prompt (or its rest) and returns its last position's logits. With `split`, the
    /// positions before it run first as the start of one step that ends with the prompt
    /// (`forward(…, stepEnd:)`), then the rest: what a fork of a prefix shared up to `split` runs.
    public func forward(_ prompt: [Int], hooks: HookSet?, split: Int?) throws -> [Float] {
        guard let split, split > 0, split < prompt.count else {
            return try forward(prompt, origins: nil, hooks: hooks, logits: .last)
        }
        _ = try forward(Array(prompt[..<split]), origins: nil, hooks: hooks, logits: .none, stepEnd: length + prompt.count)
        return try forward(Array(prompt[split...]), origins: nil, hooks: hooks, logits: .last)
    }
}
