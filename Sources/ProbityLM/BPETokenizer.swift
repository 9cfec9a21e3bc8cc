// Byte-level BPE as llama.cpp runs it (src/llama-vocab.cpp, llm_tokenizer_bpe_session): words
// from the pre-tokenizer, each word's bytes merged pair by pair, lowest merge rank first and
// leftmost on ties. Byte-level text and raw bytes map one to one, so we work on raw bytes.

import Foundation

/// The merge machinery of one byte-level BPE vocabulary.
final class BPEModel: Sendable {
    /// A merge: the pair's rank and the symbol it makes.
    private struct Merge { let rank: Int32; let result: Int32 }

    let preTokenizer: PreTokenizer
    private let ignoresMerges: Bool
    /// Token ids by the raw bytes their byte-level text stands for.
    private let tokenByBytes: [ArraySlice<UInt8>: Int32]
    /// Symbols are interned strings of raw bytes; 0...255 are the single bytes.
    /// Key: left symbol << 32 | right symbol.
    private let merges: [UInt64: Merge]
    /// The token of each symbol, or -1 when its text is not a token.
    private let symbolToken: [Int32]
    /// For a symbol that is not a token, llama.cpp looks each byte of its byte-level text up
    /// as a one-byte token; only the printable ASCII bytes can be found that way.
    private let singleByteToken: [Int32]
    private let cache = WordCache()

    init(vocabulary v: Vocabulary, preTokenizer: PreTokenizer) {
        self.preTokenizer = preTokenizer
        ignoresMerges = preTokenizer.ignoresMerges
        var tokenByBytes: [ArraySlice<UInt8>: Int32] = [:]
        tokenByBytes.reserveCapacity(v.count)
        for (id, text) in v.tokens.enumerated() {
            // A later duplicate wins, as in llama.cpp's token_to_id.
            if let bytes = ByteLevel.decode(text) { tokenByBytes[bytes[...]] = Int32(id) }
        }

        var symbols: [ArraySlice<UInt8>: Int32] = [:]
        var symbolBytes: [ArraySlice<UInt8>] = []
        for b in 0..<256 {
            symbols[[UInt8(b)][...]] = Int32(b)
            symbolBytes.append([UInt8(b)][...])
        }
        func intern(_ bytes: ArraySlice<UInt8>) -> Int32 {
            if let s = symbols[bytes] { return s }
            let s = Int32(symbolBytes.count)
            symbols[bytes] = s
            symbolBytes.append(bytes)
            return s
        }
        var merges: [UInt64: Merge] = [:]
        merges.reserveCapacity(v.merges.count)
        for (rank, line) in v.merges.enumerated() {
            // "left right", split at the first space after the first byte.
            let utf8 = Array(line.utf8)
            guard utf8.count > 2, let cut = utf8[1...].firstIndex(of: 0x20),
                  let left = ByteLevel.decode(String(decoding: utf8[..<cut], as: UTF8.self)),
                  let right = ByteLevel.decode(String(decoding: utf8[(cut + 1)...], as: UTF8.self)),
                  !left.isEmpty, !right.isEmpty
            else { continue }  // such a pair can never occur in byte-level text
            let l = intern(left[...]), r = intern(right[...])
            let key = UInt64(UInt32(l)) << 32 | UInt64(UInt32(r))
            if merges[key] == nil {  // the first rank of a repeated pair wins
                merges[key] = Merge(rank: Int32(rank), result: intern((left + right)[...]))
            }
        }
        self.tokenByBytes = tokenByBytes
        self.merges = merges
        symbolToken = symbolBytes.map { tokenByBytes[$0] ?? -1 }
        singleByteToken = (0..<256).map { b in
            (0x21...0x7E).contains(b) ? (tokenByBytes[[UInt8(b)][...]] ?? -1) : -1
        }
    }

    /// Appends the tokens of one stretch of plain text (no special tokens in it).
    func encode(_ bytes: ArraySlice<UInt8>, into out: inout [Int]) {
        guard !bytes.isEmpty else { return }
        let text = ClassifiedText(utf8: bytes)
        let words = preTokenizer.split(text)
        var byteStart = bytes.startIndex
        var cp = 0
        for length in words {
            var byteEnd = byteStart
            for n in text.byteLengths[cp..<(cp + length)] { byteEnd += Int(n) }
            cp += length
            encodeWord(bytes[byteStart..<byteEnd], into: &out)
            byteStart = byteEnd
        }
    }

    private func encodeWord(_ word: ArraySlice<UInt8>, into out: inout [Int]) {
        if let cached = cache.lookup(word) {
            for t in cached { out.append(Int(t)) }
            return
        }
        let tokens = merge(word)
        cache.store(word, tokens)
        for t in tokens { out.append(Int(t)) }
    }

    /// A candidate merge of two adjacent symbols, valid while both still hold these symbols.
    private struct Pair {
        var rank: Int32, left: Int32, right: Int32, leftSymbol: Int32, rightSymbol: Int32
        @inline(__always) func before(_ o: Pair) -> Bool { rank < o.rank || (rank == o.rank && left < o.left) }
    }

    private func merge(_ word: ArraySlice<UInt8>) -> [Int32] {
        if ignoresMerges, let t = tokenByBytes[word] { return [t] }
        let n = word.count
        var symbol = word.map { Int32($0) }
        var length = [Int32](repeating: 1, count: n)
        var next = (0..<n).map { Int32($0 + 1) }
        var prev = (0..<n).map { Int32($0 - 1) }
        next[n - 1] = -1
        var heap: [Pair] = []
        heap.reserveCapacity(n)

        func push(_ l: Int32, _ r: Int32) {
            guard l >= 0, r >= 0 else { return }
            let key = UInt64(UInt32(symbol[Int(l)])) << 32 | UInt64(UInt32(symbol[Int(r)]))
            guard let m = merges[key] else { return }
            heap.append(Pair(rank: m.rank, left: l, right: r, leftSymbol: symbol[Int(l)], rightSymbol: symbol[Int(r)]))
            var i = heap.count - 1
            while i > 0 {
                let p = (i - 1) / 2
                guard heap[i].before(heap[p]) else { break }
                heap.swapAt(i, p)
                i = p
            }
        }
        func pop() -> Pair {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var i = 0
                while true {
                    let l = 2 * i + 1, r = l + 1
                    var m = i
                    if l < heap.count && heap[l].before(heap[m]) { m = l }
                    if r < heap.count && heap[r].before(heap[m]) { m = r }
                    if m == i { break }
                    heap.swapAt(i, m)
                    i = m
                }
            }
            return top
        }

        for i in 1..<max(n, 1) { push(Int32(i - 1), Int32(i)) }
        while !heap.isEmpty {
            let p = pop()
            let l = Int(p.left), r = Int(p.right)
            // Stale: one side was merged away or has grown since the pair was queued.
            guard length[l] > 0, length[r] > 0, symbol[l] == p.leftSymbol, symbol[r] == p.rightSymbol else { continue }
            let key = UInt64(UInt32(p.leftSymbol)) << 32 | UInt64(UInt32(p.rightSymbol))
            guard let m = merges[key] else { continue }
            symbol[l] = m.result
            length[l] += length[r]
            length[r] = 0
            next[l] = next[r]
            if next[r] >= 0 { prev[Int(next[r])] = Int32(l) }
            push(prev[l], Int32(l))
            push(Int32(l), next[l])
        }

        var out: [Int32] = []
        var i = 0
        while i >= 0 && i < n {
            let t = symbolToken[Int(symbol[i])]
            if t >= 0 {
                out.append(t)
            } else {
                for b in word[(word.startIndex + i)..<(word.startIndex + i + Int(length[i]))] {
                    let s = singleByteToken[Int(b)]
                    if s >= 0 { out.append(s) }
                }
            }
            i = Int(next[i])
        }
        return out
    }
}

/// A byte string as a dictionary key, hashed once with FNV-1a and compared with memcmp: the
/// generic hashing and element-wise equality of `ArraySlice` dominated encoding time.
struct ByteKey: Hashable, @unchecked Sendable {
    let bytes: ArraySlice<UInt8>
    let hash: UInt64

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        hash = h
    }

    func hash(into hasher: inout Hasher) { hasher.combine(hash) }

    static func == (a: ByteKey, b: ByteKey) -> Bool {
        guard a.hash == b.hash, a.bytes.count == b.bytes.count else { return false }
        return a.bytes.withUnsafeBufferPointer { x in
            b.bytes.withUnsafeBufferPointer { y in
                guard let p = x.baseAddress, let q = y.baseAddress else { return x.isEmpty }
                return memcmp(p, q, x.count) == 0
            }
        }
    }
}

/// Tokens of words seen before. Natural text repeats its words, so most words skip merging.
final class WordCache: @unchecked Sendable {
    private var entries: [ByteKey: [Int32]] = [:]
    private let lock = NSLock()
    private let capacity = 1 << 18

    func lookup(_ word: ArraySlice<UInt8>) -> [Int32]? {
        lock.lock()
        defer { lock.unlock() }
        return entries[ByteKey(word)]
    }

    func store(_ word: ArraySlice<UInt8>, _ tokens: [Int32]) {
        lock.lock()
        defer { lock.unlock() }
        if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        entries[ByteKey(ArraySlice(Array(word)))] = tokens
    }
}
