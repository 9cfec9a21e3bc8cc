// Next-token sampling: greedy, or top-k, top-p and min-p filters and temperature in the order of
// llama.cpp's default sampler chain (common/common.h: ... top_k, typ_p, top_p, min_p, xtc,
// temperature, then dist), drawn with a seeded xoshiro256** generator so runs repeat exactly.

import Foundation
import ProbityTensor

/// How the next token is chosen from the logits. The defaults are greedy decoding.
public struct SamplingOptions: Sendable, Equatable {
    /// Softmax temperature; 0 means greedy (argmax, lowest id on ties).
    public var temperature: Float = 0
    /// Keep only the `topK` highest logits; 0 turns the filter off.
    public var topK: Int = 0
    /// Keep the smallest set of most likely tokens whose probability reaches `topP` (nucleus); 1 is off.
    public var topP: Float = 1
    /// Drop tokens less likely than `minP` times the most likely one; 0 is off.
    public var minP: Float = 0
    /// Seed of the random generator: the same seed and logits give the same tokens on every platform.
    public var seed: UInt64 = 0

    public init(temperature: Float = 0, topK: Int = 0, topP: Float = 1, minP: Float = 0, seed: UInt64 = 0) {
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.minP = minP
        self.seed = seed
    }

    /// Throws `GenerationError.invalidSamplingOption` for the first option out of range.
    public func validate() throws {
        func bad(_ name: String, _ value: CustomStringConvertible, _ expected: String) -> GenerationError {
            .invalidSamplingOption(name: name, value: value.description, expected: expected)
        }
        guard temperature.isFinite, temperature >= 0 else {
            throw bad("temperature", temperature, "a finite number >= 0 (0 = greedy)")
        }
        guard topK >= 0 else { throw bad("top_k", topK, "an integer >= 0 (0 = off)") }
        guard topP.isFinite, topP > 0, topP <= 1 else { throw bad("top_p", topP, "a number in (0, 1] (1 = off)") }
        guard minP.isFinite, minP >= 0, minP <= 1 else { throw bad("min_p", minP, "a number in [0, 1] (0 = off)") }
    }
}

/// Chooses tokens from logits according to `SamplingOptions`.
///
/// With temperature 0 the choice is the argmax (lowest id on ties) and the filters do not matter,
/// since each of them keeps the most likely token. Otherwise the stages run in llama.cpp's order:
///
/// 1. top-k: the k highest logits, found by partial selection (a k-element heap), not a full sort;
/// 2. top-p: over the softmax of what is left, the most likely tokens until their mass reaches p
///    (the token that crosses p is kept), again without sorting the whole vocabulary;
/// 3. min-p: tokens whose logit is at least `max + log(min_p)`, i.e. p ≥ min_p · p_max;
/// 4. temperature: softmax of `logit / T` over the survivors, and one draw from it.
///
/// Filters see the untempered distribution, as in llama.cpp. Ties rank the lower id first.
/// Buffers are kept between calls, so sampling allocates only when the vocabulary size changes.
public struct Sampler: Sendable {
    public let options: SamplingOptions
    private var random: Xoshiro256StarStar
    // Candidates: token ids and their logits, kept in parallel. (vocabulary size)
    private var ids: [Int32] = []
    private var values: [Float] = []

    /// A sampler for `options`; throws `GenerationError.invalidSamplingOption` for options out of range.
    public init(_ options: SamplingOptions) throws {
        try options.validate()
        self.options = options
        random = Xoshiro256StarStar(seed: options.seed)
    }

    /// The next token id for these logits (one per vocabulary entry).
    /// - Complexity: O(n) greedy; O(n log k) with top-k; O(n + m log n) with top-p alone, where m
    ///   is the number of tokens top-p keeps.
    public mutating func sample(_ logits: UnsafeBufferPointer<Float>) -> Int {
        precondition(!logits.isEmpty, "sampling needs at least one logit")
        if options.temperature == 0 { return Self.argmax(logits) }
        let range = filter(logits)
        return draw(range)
    }

    /// The distribution `sample` draws from: surviving tokens and their probabilities after every
    /// filter and the temperature, most likely first. Greedy options give the argmax with probability 1.
    public mutating func distribution(_ logits: UnsafeBufferPointer<Float>) -> [(token: Int, probability: Double)] {
        precondition(!logits.isEmpty, "sampling needs at least one logit")
        if options.temperature == 0 { return [(Self.argmax(logits), 1)] }
        let range = filter(logits)
        let maxValue = range.reduce(-Float.infinity) { max($0, values[$1]) }
        let weights = range.map { Double(exp((values[$0] - maxValue) * (1 / options.temperature))) }
        let total = weights.reduce(0, +)
        return zip(range, weights).map { (Int(ids[$0]), $1 / total) }
            .sorted { $0.probability != $1.probability ? $0.probability > $1.probability : $0.token < $1.token }
    }

    /// Argmax with the lowest id winning ties; NaN never wins.
    static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for i in logits.indices where logits[i] > bestValue {
            best = i
            bestValue = logits[i]
        }
        return best
    }

    /// Runs top-k, top-p and min-p; the survivors end up in `ids/values[range]`, in no particular order.
    private mutating func filter(_ logits: UnsafeBufferPointer<Float>) -> Range<Int> {
        let n = logits.count
        if ids.count != n {
            ids = [Int32](repeating: 0, count: n)
            values = [Float](repeating: 0, count: n)
        }
        let options = self.options
        return ids.withUnsafeMutableBufferPointer { ids in
            values.withUnsafeMutableBufferPointer { values in
                let heap = CandidateHeap(ids: ids, values: values)
                var range: Range<Int>
                var sortedDescending: Bool
                if options.topK > 0, options.topK < n {
                    heap.selectTop(options.topK, of: logits)
                    heap.sortDescending(count: options.topK)
                    range = 0..<options.topK
                    sortedDescending = true
                } else {
                    for i in 0..<n {
                        ids[i] = Int32(i)
                        values[i] = logits[i].isNaN ? -.infinity : logits[i]
                    }
                    range = 0..<n
                    sortedDescending = false
                }
                func maximum(_ r: Range<Int>) -> Float {
                    sortedDescending ? values[r.lowerBound] : r.reduce(-Float.infinity) { max($0, values[$1]) }
                }

                if options.topP < 1 {
                    let maxValue = maximum(range)
                    var total = 0.0
                    for i in range { total += Double(exp(values[i] - maxValue)) }
                    let target = Double(options.topP) * total
                    var mass = 0.0
                    if sortedDescending {
                        var end = range.lowerBound
                        while end < range.upperBound, mass < target {
                            mass += Double(exp(values[end] - maxValue))
                            end += 1
                        }
                        range = range.lowerBound..<end
                    } else {
                        // Pop the most likely tokens off a max-heap until their mass reaches p;
                        // each pop parks its token at the tail, so the kept ones gather there.
                        heap.buildMaxHeap(count: range.count)
                        var end = range.upperBound
                        while end > range.lowerBound, mass < target {
                            end = heap.popMax(count: end)
                            mass += Double(exp(values[end] - maxValue))
                        }
                        range = end..<range.upperBound
                    }
                }

                if options.minP > 0 {
                    let threshold = maximum(range) + log(options.minP)
                    // Survivors move to the front of the range in their order.
                    var kept = range.lowerBound
                    for i in range where values[i] >= threshold {
                        heap.swap(kept, i)
                        kept += 1
                    }
                    range = range.lowerBound..<kept
                }
                return range
            }
        }
    }

    /// One draw from the softmax of `values[range] / temperature`. Overwrites `values[range]`
    /// with the unnormalised weights, so each weight costs one `exp`.
    private mutating func draw(_ range: Range<Int>) -> Int {
        let inverseTemperature = 1 / options.temperature
        let u = random.nextUnitDouble()
        return ids.withUnsafeBufferPointer { ids in
            values.withUnsafeMutableBufferPointer { values in
                var maxValue = -Float.infinity
                for i in range { maxValue = max(maxValue, values[i]) }
                var total = 0.0
                for i in range {
                    let w = exp((values[i] - maxValue) * inverseTemperature)
                    values[i] = w
                    total += Double(w)
                }
                let target = u * total
                var mass = 0.0
                for i in range {
                    mass += Double(values[i])
                    if target < mass { return Int(ids[i]) }
                }
                // Rounding can leave `target` a hair above the last partial sum.
                return Int(ids[range.upperBound - 1])
            }
        }
    }
}

/// Binary-heap operations over the sampler's parallel id/logit buffers, in place, on the prefix
/// `0..<count`. "Ranks above" means a higher logit, or the same logit and a lower id.
private struct CandidateHeap {
    let ids: UnsafeMutableBufferPointer<Int32>
    let values: UnsafeMutableBufferPointer<Float>

    @inline(__always) func above(_ a: Int, _ b: Int) -> Bool {
        values[a] > values[b] || (values[a] == values[b] && ids[a] < ids[b])
    }

    @inline(__always) func swap(_ a: Int, _ b: Int) {
        guard a != b else { return }
        let id = ids[a]; ids[a] = ids[b]; ids[b] = id
        let v = values[a]; values[a] = values[b]; values[b] = v
    }

    /// Fills `0..<k` with the k top-ranked logits as a min-heap (root = the weakest of them).
    func selectTop(_ k: Int, of logits: UnsafeBufferPointer<Float>) {
        for i in 0..<k {
            ids[i] = Int32(i)
            values[i] = logits[i].isNaN ? -.infinity : logits[i]
        }
        for i in stride(from: k / 2 - 1, through: 0, by: -1) { siftDown(i, count: k, minHeap: true) }
        for i in k..<logits.count {
            let v = logits[i].isNaN ? -Float.infinity : logits[i]
            // Later ids lose ties, so only a strictly higher logit displaces the root.
            if v > values[0] {
                ids[0] = Int32(i)
                values[0] = v
                siftDown(0, count: k, minHeap: true)
            }
        }
    }

    /// Heapsort of the min-heap in `0..<count` into descending rank order.
    func sortDescending(count: Int) {
        var end = count
        while end > 1 {
            end -= 1
            swap(0, end)
            siftDown(0, count: end, minHeap: true)
        }
    }

    func buildMaxHeap(count: Int) {
        for i in stride(from: count / 2 - 1, through: 0, by: -1) { siftDown(i, count: count, minHeap: false) }
    }

    /// Moves the top of the max-heap in `0..<count` to slot `count - 1` and returns that slot.
    func popMax(count: Int) -> Int {
        let last = count - 1
        swap(0, last)
        siftDown(0, count: last, minHeap: false)
        return last
    }

    private func siftDown(_ start: Int, count: Int, minHeap: Bool) {
        var parent = start
        while true {
            let left = 2 * parent + 1
            guard left < count else { return }
            var child = left
            // A min-heap lifts the weaker child, a max-heap the stronger.
            if left + 1 < count, above(left + 1, left) != minHeap { child = left + 1 }
            guard above(child, parent) != minHeap else { return }
            swap(parent, child)
            parent = child
        }
    }
}
