// The scanners behind SplitRule: one function per pattern over code points and their classes,
// with the matching order of llama.cpp's custom splitters (src/unicode.cpp) and, for the generic
// runs, of std::regex's leftmost-first search. Lookahead stops at the segment end, as there.

extension SplitRule {
    /// Splits `text[start..<end]`, appending segment lengths (code points) to `out`.
    func split(_ text: ClassifiedText, _ start: Int, _ end: Int, into out: inout [Int]) {
        guard start < end else { return }
        text.codepoints.withUnsafeBufferPointer { cps in
            text.classes.withUnsafeBufferPointer { cls in
                text.whitespace.withUnsafeBufferPointer { ws in
                    let scan = Scan(cps: cps, cls: cls, ws: ws, end: end)
                    switch self {
                    case .gpt2: scan.gpt2(start, &out)
                    case let .llama3(maxDigits, marks): scan.llama3(start, maxDigits: maxDigits, marksAreLetters: marks, &out)
                    case let .run(prefix, body, min, max): scan.run(start, prefix, body, min, max, &out)
                    case .trailingWhitespace: scan.trailingWhitespace(start, &out)
                    }
                }
            }
        }
    }
}

private let apostrophe: UInt32 = 0x27, space: UInt32 = 0x20, cr: UInt32 = 0x0D, lf: UInt32 = 0x0A

/// A view of one segment; reads past `end` see nothing, as llama.cpp's OUT_OF_RANGE.
private struct Scan {
    let cps: UnsafeBufferPointer<UInt32>
    let cls: UnsafeBufferPointer<CodepointClass>
    let ws: UnsafeBufferPointer<Bool>
    let end: Int

    @inline(__always) func isLetter(_ i: Int) -> Bool { i < end && cls[i].contains(.letter) }
    @inline(__always) func isNumber(_ i: Int) -> Bool { i < end && cls[i].contains(.number) }
    @inline(__always) func isSpace(_ i: Int) -> Bool { i < end && ws[i] }
    /// `[^\s\p{L}\p{N}]` for a code point inside the segment.
    @inline(__always) func isOther(_ i: Int) -> Bool {
        i < end && !ws[i] && cls[i].isDisjoint(with: [.letter, .number])
    }
    /// `[\p{L}]`, or `[\p{L}\p{M}]` when marks count as letters (Qwen3.5).
    @inline(__always) func isLetter(_ i: Int, _ letters: CodepointClass) -> Bool {
        i < end && !cls[i].isDisjoint(with: letters)
    }
    /// `[^\s\p{L}\p{N}]`, or `[^\s\p{L}\p{M}\p{N}]` when marks count as letters.
    @inline(__always) func isOther(_ i: Int, _ letters: CodepointClass) -> Bool {
        i < end && !ws[i] && cls[i].isDisjoint(with: letters.union(.number))
    }
    @inline(__always) func isLineBreak(_ i: Int) -> Bool { i < end && (cps[i] == cr || cps[i] == lf) }

    /// Length of a contraction ('s 't 'm 'd 're 've 'll) at `pos`, or 0. Llama 3 and Qwen2 match
    /// it case-insensitively; only ASCII letters can lower-case into these.
    @inline(__always) func contraction(_ pos: Int, ignoringCase: Bool) -> Int {
        guard cps[pos] == apostrophe, pos + 1 < end else { return 0 }
        func lower(_ c: UInt32) -> UInt32 { ignoringCase && c >= 0x41 && c <= 0x5A ? c + 32 : c }
        let a = lower(cps[pos + 1])
        if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { return 2 }  // s t m d
        guard pos + 2 < end else { return 0 }
        let b = lower(cps[pos + 2])
        if (a == 0x72 && b == 0x65) || (a == 0x76 && b == 0x65) || (a == 0x6C && b == 0x6C) { return 3 }  // re ve ll
        return 0
    }

    /// Counts the whitespace run at `pos`; also where its last CR or LF ends (0 if none).
    @inline(__always) func whitespaceRun(_ pos: Int) -> (count: Int, lineBreakEnd: Int) {
        var n = 0, lineBreakEnd = 0
        while isSpace(pos + n) {
            if cps[pos + n] == cr || cps[pos + n] == lf { lineBreakEnd = pos + n + 1 }
            n += 1
        }
        return (n, lineBreakEnd)
    }

    func gpt2(_ start: Int, _ out: inout [Int]) {
        var pos = start
        while pos < end {
            let begin = pos
            let c = cps[pos]
            let k = contraction(pos, ignoringCase: false)
            if k > 0 {
                pos += k
            } else {
                // ` ?X+` looks at the code point after an optional leading space.
                let probe = c == space ? pos + 1 : pos
                if isLetter(probe) {
                    pos = probe
                    while isLetter(pos) { pos += 1 }
                } else if isNumber(probe) {
                    pos = probe
                    while isNumber(pos) { pos += 1 }
                } else if isOther(probe) {
                    pos = probe
                    while isOther(pos) { pos += 1 }
                } else {
                    let n = whitespaceRun(pos).count
                    if n > 1 && pos + n < end {
                        pos += n - 1      // \s+(?!\S): leave the last space to the next word
                    } else if n > 0 {
                        pos += n
                    } else {
                        pos += 1
                    }
                }
            }
            out.append(pos - begin)
        }
    }

    func llama3(_ start: Int, maxDigits: Int, marksAreLetters: Bool, _ out: inout [Int]) {
        let letters: CodepointClass = marksAreLetters ? [.letter, .mark] : .letter
        var pos = start
        while pos < end {
            let c = cps[pos]
            let k = contraction(pos, ignoringCase: true)
            if k > 0 {
                out.append(k)
                pos += k
                continue
            }
            // [^\r\n\p{L}\p{N}]?\p{L}+ (Qwen3.5: [\p{L}\p{M}]+)
            if !(c == cr || c == lf || cls[pos].contains(.number)) && (isLetter(pos, letters) || isLetter(pos + 1, letters)) {
                let begin = pos
                pos += 1
                while isLetter(pos, letters) { pos += 1 }
                out.append(pos - begin)
                continue
            }
            // \p{N}{1,k}
            if isNumber(pos) {
                var begin = pos
                while isNumber(pos) {
                    pos += 1
                    if pos - begin >= maxDigits {
                        out.append(pos - begin)
                        begin = pos
                    }
                }
                if pos > begin { out.append(pos - begin) }
                continue
            }
            // ` ?[^\s\p{L}\p{N}]+[\r\n]*`; llama.cpp enters this branch for a final lone space too.
            let begin = pos
            let probe = c == space ? pos + 1 : pos
            if probe >= end || isOther(probe, letters) {
                pos = probe
                while isOther(pos, letters) { pos += 1 }
                while isLineBreak(pos) { pos += 1 }
                out.append(pos - begin)
                continue
            }
            let (n, lineBreakEnd) = whitespaceRun(pos)
            if lineBreakEnd > 0 {
                pos = lineBreakEnd                // \s*[\r\n]+
            } else if n > 1 && pos + n < end {
                pos += n - 1                      // \s+(?!\S)
            } else if n > 0 {
                pos += n                          // \s+
            } else {
                pos += 1
            }
            out.append(pos - begin)
        }
    }

    func trailingWhitespace(_ start: Int, _ out: inout [Int]) {
        var cut = end
        while cut > start && ws[cut - 1] { cut -= 1 }
        if cut > start { out.append(cut - start) }
        if end > cut { out.append(end - cut) }
    }

    /// `P?B{min,max}` found leftmost-first; text between matches becomes its own segment.
    func run(_ start: Int, _ prefix: SplitRule.CharacterSet?, _ body: SplitRule.CharacterSet,
             _ minCount: Int, _ maxCount: Int, _ out: inout [Int]) {
        @inline(__always) func inBody(_ i: Int) -> Bool { i < end && body.contains(cps[i], cls[i], ws[i]) }
        var pos = start, gapStart = start
        while pos < end {
            var bodyStart = pos
            if let prefix, pos + 1 < end, prefix.contains(cps[pos], cls[pos], ws[pos]), inBody(pos + 1) {
                bodyStart = pos + 1
            } else if !inBody(pos) {
                pos += 1
                continue
            }
            var i = bodyStart
            while i - bodyStart < maxCount && inBody(i) { i += 1 }
            if i - bodyStart < minCount {
                pos += 1
                continue
            }
            if pos > gapStart { out.append(pos - gapStart) }
            out.append(i - pos)
            pos = i
            gapStart = i
        }
        if end > gapStart { out.append(end - gapStart) }
    }
}
