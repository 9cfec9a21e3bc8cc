// SentencePiece-style tokenization as llama.cpp runs it (src/llama-vocab.cpp,
// llm_tokenizer_spm_session): spaces become `▁`, characters merge pairwise by the score of the
// token they form (best first, leftmost on ties), and leftovers fall back to `<0xNN>` byte tokens.

/// The merge machinery of one SentencePiece vocabulary.
final class SPMModel: Sendable {
    private let tokenByBytes: [ArraySlice<UInt8>: Int32]
    private let scores: [Float]
    private let byteToken: [Int32]
    private let unknownID: Int32

    init(vocabulary v: Vocabulary) {
        var tokenByBytes: [ArraySlice<UInt8>: Int32] = [:]
        tokenByBytes.reserveCapacity(v.count)
        for (id, text) in v.tokens.enumerated() {
            tokenByBytes[Array(text.utf8)[...]] = Int32(id)  // a later duplicate wins, as in llama.cpp
        }
        self.tokenByBytes = tokenByBytes
        scores = v.scores
        unknownID = Int32(v.unknownID ?? -1)
        let hex = Array("0123456789ABCDEF".utf8)
        byteToken = (0..<256).map { b in
            let name: [UInt8] = Array("<0x".utf8) + [hex[b >> 4], hex[b & 15], UInt8(ascii: ">")]
            return tokenByBytes[name[...]] ?? tokenByBytes[[UInt8(b)][...]] ?? -1
        }
    }

    /// `▁` (U+2581), SentencePiece's visible space.
    static let spaceMarker: [UInt8] = [0xE2, 0x96, 0x81]

    /// Appends the tokens of one stretch of plain text; `spacePrefix` adds the leading space
    /// SentencePiece expects at the start of text and after a special token.
    func encode(_ raw: ArraySlice<UInt8>, spacePrefix: Bool, into out: inout [Int]) {
        var text: [UInt8] = []
        text.reserveCapacity(raw.count + 8)
        if spacePrefix { text += Self.spaceMarker }
        for b in raw {
            if b == 0x20 { text += Self.spaceMarker } else { text.append(b) }
        }
        guard !text.isEmpty else { return }

        // One symbol per UTF-8 character, by its lead byte as llama.cpp's unicode_len_utf8.
        var start: [Int] = [], length: [Int] = []
        var i = 0
        while i < text.count {
            let lead = text[i]
            let len = lead < 0xC0 ? 1 : lead < 0xE0 ? 2 : lead < 0xF0 ? 3 : 4
            let n = min(len, text.count - i)
            start.append(i)
            length.append(n)
            i += n
        }
        let count = start.count
        var next = (0..<count).map { $0 + 1 }
        var prev = (0..<count).map { $0 - 1 }
        next[count - 1] = -1

        struct Pair { var score: Float; var left: Int; var right: Int; var size: Int
            func before(_ o: Pair) -> Bool { score > o.score || (score == o.score && left < o.left) }
        }
        var heap: [Pair] = []
        func push(_ l: Int, _ r: Int) {
            guard l >= 0, r >= 0 else { return }
            let size = length[l] + length[r]
            guard let t = tokenByBytes[text[start[l]..<(start[l] + size)]] else { return }
            heap.append(Pair(score: scores[Int(t)], left: l, right: r, size: size))
            var k = heap.count - 1
            while k > 0 {
                let p = (k - 1) / 2
                guard heap[k].before(heap[p]) else { break }
                heap.swapAt(k, p)
                k = p
            }
        }
        func pop() -> Pair {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var k = 0
                while true {
                    let l = 2 * k + 1, r = l + 1
                    var m = k
                    if l < heap.count && heap[l].before(heap[m]) { m = l }
                    if r < heap.count && heap[r].before(heap[m]) { m = r }
                    if m == k { break }
                    heap.swapAt(k, m)
                    k = m
                }
            }
            return top
        }

        for k in 1..<max(count, 1) { push(k - 1, k) }
        while !heap.isEmpty {
            let p = pop()
            guard length[p.left] > 0, length[p.right] > 0, length[p.left] + length[p.right] == p.size else { continue }
            length[p.left] += length[p.right]
            length[p.right] = 0
            next[p.left] = next[p.right]
            if next[p.right] >= 0 { prev[next[p.right]] = p.left }
            push(prev[p.left], p.left)
            push(p.left, next[p.left])
        }

        // Merged symbols are tokens by construction; single characters may not be, and become
        // byte tokens. llama.cpp aborts when a byte has no token; we emit the unknown token.
        var k = 0
        while k >= 0 {
            let piece = text[start[k]..<(start[k] + length[k])]
            if let t = tokenByBytes[piece] {
                out.append(Int(t))
            } else {
                for b in piece {
                    let t = byteToken[Int(b)]
                    if t >= 0 { out.append(Int(t)) } else if unknownID >= 0 { out.append(Int(unknownID)) }
                }
            }
            k = next[k]
        }
    }
}
