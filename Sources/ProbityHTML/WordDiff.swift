// A word diff of two texts (the baseline and steered answers): the longest common subsequence of
// their words, whitespace kept with the word before it, so the pieces joined give back each text.

/// One piece of a diff: text in both, only in the first (removed), or only in the second (added).
public struct DiffPiece: Sendable, Equatable {
    public enum Kind: String, Sendable { case same, removed, added }
    public var kind: Kind
    public var text: String
}

enum WordDiff {
    /// Words with their trailing whitespace: "a  b\nc" → ["a  ", "b\n", "c"]; leading whitespace is a word.
    static func words(_ text: String) -> [String] {
        var out: [String] = []
        var current = ""
        var inSpace = false
        for ch in text {
            if ch.isWhitespace {
                inSpace = true
                current.append(ch)
            } else {
                if inSpace && !current.isEmpty { out.append(current); current = "" }
                inSpace = false
                current.append(ch)
            }
        }
        if !current.isEmpty { out.append(current) }
        return out
    }

    /// The pieces that turn `a` into `b`, runs of one kind joined.
    static func diff(_ a: String, _ b: String) -> [DiffPiece] {
        let x = words(a), y = words(b)
        // lcs[i][j]: the longest common subsequence of x[i...] and y[j...].
        var lcs = [[Int]](repeating: [Int](repeating: 0, count: y.count + 1), count: x.count + 1)
        for i in stride(from: x.count - 1, through: 0, by: -1) {
            for j in stride(from: y.count - 1, through: 0, by: -1) {
                lcs[i][j] = x[i] == y[j] ? lcs[i + 1][j + 1] + 1 : max(lcs[i + 1][j], lcs[i][j + 1])
            }
        }
        var pieces: [DiffPiece] = []
        func add(_ kind: DiffPiece.Kind, _ text: String) {
            if let last = pieces.last, last.kind == kind { pieces[pieces.count - 1].text += text } else { pieces.append(DiffPiece(kind: kind, text: text)) }
        }
        var i = 0, j = 0
        while i < x.count || j < y.count {
            if i < x.count && j < y.count && x[i] == y[j] {
                add(.same, x[i]); i += 1; j += 1
            } else if j < y.count && (i == x.count || lcs[i][j + 1] >= lcs[i + 1][j]) {
                add(.added, y[j]); j += 1
            } else {
                add(.removed, x[i]); i += 1
            }
        }
        return pieces
    }
}
