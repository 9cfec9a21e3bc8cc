// Text to token ids and back, token for token as llama.cpp's llama_tokenize / llama_detokenize
// (src/llama-vocab.cpp): special tokens are cut out of the raw text first
// (tokenizer_st_partition), the rest goes to byte-level BPE or SentencePiece.

import ProbityFormats

/// A model's tokenizer, built from its GGUF vocabulary. Safe to share between threads.
public final class Tokenizer: Sendable {
    /// The vocabulary this tokenizer was built from.
    public let vocabulary: Vocabulary
    private let engine: Engine
    /// Each token's text as llama.cpp's token_to_piece renders it with special = true.
    private let pieces: [[UInt8]]
    /// Control, user-defined and unknown tokens, longest text first: the order llama.cpp tries them.
    private let specials: [Special]
    /// Per first byte, the positions in `specials` of the tokens starting with it, in order: to find
    /// the ones present in a text in one pass (Gemma's 6,414 specials include runs of spaces and
    /// newlines, so most positions of a text start one).
    private let specialsByLead: [[Int]]

    private enum Engine: Sendable {
        case bpe(BPEModel)
        case spm(SPMModel)
    }

    private struct Special: Sendable {
        let id: Int
        let bytes: [UInt8]
        /// Control and unknown tokens are only matched when parsing specials; user-defined ones always.
        let needsParseSpecial: Bool
        /// Whitespace right after the token is dropped (RSTRIP).
        let stripsRight: Bool
    }

    /// The tokenizer of a GGUF model or vocabulary file.
    public convenience init(gguf: GGUFFile) throws {
        try self.init(vocabulary: Vocabulary(gguf: gguf))
    }

    /// The tokenizer of a vocabulary. Throws only for a BPE vocabulary without a pre-tokenizer.
    public init(vocabulary v: Vocabulary) throws {
        vocabulary = v
        switch v.model {
        case .bytePairEncoding:
            guard let pre = v.preTokenizer else {
                throw TokenizerError.missingKey(source: "vocabulary", key: Vocabulary.Key.pre)
            }
            engine = .bpe(BPEModel(vocabulary: v, preTokenizer: pre))
        case .sentencePiece:
            engine = .spm(SPMModel(vocabulary: v))
        }
        pieces = v.tokens.indices.map { Self.renderPiece(v, $0) }
        var specials: [Special] = []
        for (id, type) in v.types.enumerated() where type == .control || type == .userDefined || type == .unknown {
            specials.append(Special(id: id, bytes: Array(v.tokens[id].utf8), needsParseSpecial: type != .userDefined,
                                    stripsRight: v.rightStripIDs.contains(id)))
        }
        // Stable, so equal lengths keep id order (llama.cpp's std::sort leaves ties unspecified).
        self.specials = specials.enumerated()
            .sorted { ($0.element.bytes.count, -$0.offset) > ($1.element.bytes.count, -$1.offset) }
            .map(\.element)
        var byLead = [[Int]](repeating: [], count: 256)
        for (k, s) in self.specials.enumerated() { if let b = s.bytes.first { byLead[Int(b)].append(k) } }
        specialsByLead = byLead
    }

    /// Number of tokens in the vocabulary.
    public var vocabularySize: Int { vocabulary.count }
    /// The beginning-of-sequence token, if the vocabulary has one.
    public var bosID: Int? { vocabulary.bosID }
    /// The end-of-sequence token, if the vocabulary has one.
    public var eosID: Int? { vocabulary.eosID }
    /// Whether `encode(_:addSpecial: true)` starts with BOS (`tokenizer.ggml.add_bos_token`).
    public var addsBOS: Bool { vocabulary.addBOS }
    /// Whether `encode(_:addSpecial: true)` ends with EOS (`tokenizer.ggml.add_eos_token`).
    public var addsEOS: Bool { vocabulary.addEOS }

    /// Whether a token is a control or user-defined token (chat markers, BOS/EOS and the like).
    public func isSpecial(_ id: Int) -> Bool {
        guard vocabulary.types.indices.contains(id) else { return false }
        let t = vocabulary.types[id]
        return t == .control || t == .userDefined
    }

    /// The token ids of `text`, as llama_tokenize(text, add_special, parse_special).
    /// - Parameters:
    ///   - addSpecial: add BOS/EOS when the vocabulary asks for them.
    ///   - parseSpecial: turn the text of control tokens (e.g. `<|im_start|>`) into those tokens;
    ///     when false they are tokenized as plain text. User-defined tokens are matched either way.
    /// - Complexity: O(n) in the length of the text, plus merging for words not seen before.
    public func encode(_ text: String, addSpecial: Bool = true, parseSpecial: Bool = true) -> [Int] {
        encode(bytes: Array(text.utf8), addSpecial: addSpecial, parseSpecial: parseSpecial, plainText: [])
    }

    /// The token ids of a rendered conversation: the template's markup is parsed for special tokens,
    /// the messages' own text is not (control tokens there stay text, as with parseSpecial false).
    /// For text without special-token markers this equals `encode(chat.text, parseSpecial: true)`,
    /// except that a template which writes BOS itself (Gemma's) gets no second one from
    /// `add_bos_token`, as Hugging Face's `apply_chat_template` leaves it.
    public func encode(_ chat: RenderedChat, addSpecial: Bool = true) -> [Int] {
        var ids = encode(bytes: Array(chat.text.utf8), addSpecial: addSpecial, parseSpecial: true, plainText: chat.content)
        if addSpecial, vocabulary.addBOS, let bos = vocabulary.bosID, ids.count >= 2, ids[0] == bos, ids[1] == bos {
            ids.removeFirst()
        }
        return ids
    }

    /// `plainText`: sorted, disjoint byte ranges in which control tokens are not parsed.
    private func encode(bytes: [UInt8], addSpecial: Bool, parseSpecial: Bool, plainText: [Range<Int>]) -> [Int] {
        var out: [Int] = []
        out.reserveCapacity(bytes.count / 3 + 2)
        let v = vocabulary
        if addSpecial, v.addBOS, let bos = v.bosID { out.append(bos) }
        var previousWasSpecial = true
        for fragment in partition(bytes, parseSpecial: parseSpecial, plainText: plainText) {
            switch fragment {
            case let .token(id):
                out.append(id)
                previousWasSpecial = true
            case let .text(range):
                switch engine {
                case let .bpe(m):
                    m.encode(bytes[range], into: &out)
                case let .spm(m):
                    m.encode(bytes[range], spacePrefix: v.addSpacePrefix && previousWasSpecial, into: &out)
                }
                previousWasSpecial = false
            }
        }
        if addSpecial, v.addEOS, let eos = v.eosID { out.append(eos) }
        return out
    }

    /// The text of `tokens`, as llama_detokenize(remove_special: false, unparse_special: true):
    /// special tokens appear as their text, SentencePiece's leading space is dropped, and
    /// vocabularies that ask for it get llama.cpp's space clean-up.
    public func decode(_ tokens: [Int]) throws -> String {
        var bytes: [UInt8] = []
        var removeSpace = stripsLeadingSpace
        for id in tokens {
            let piece = try pieceBytes(id)
            if removeSpace, piece.first == 0x20 {
                bytes += piece.dropFirst()
            } else {
                bytes += piece
            }
            removeSpace = false
        }
        if vocabulary.preTokenizer?.cleansSpaces == true { Self.cleanSpaces(&bytes) }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Whether detokenizing drops one leading space of the first piece (SentencePiece's prefix).
    var stripsLeadingSpace: Bool { vocabulary.addSpacePrefix }

    /// The bytes of one token's text. A byte-level token may hold part of a UTF-8 character.
    public func pieceBytes(_ id: Int) throws -> [UInt8] {
        guard pieces.indices.contains(id) else {
            throw TokenizerError.tokenOutOfRange(id, vocabularySize: vocabularySize)
        }
        return pieces[id]
    }

    /// One token's text for display: bytes that are not valid UTF-8 on their own appear as
    /// `\xNN` (Python's "backslashreplace", as in the reference token pieces).
    public func piece(_ id: Int) throws -> String {
        UTF8Scan.displayString(try pieceBytes(id))
    }

    // MARK: special tokens

    private enum Fragment {
        case text(Range<Int>)
        case token(Int)
    }

    /// Cuts the special tokens out of the text: each special token in turn (longest first) splits
    /// every remaining text fragment at its occurrences, as tokenizer_st_partition does. A control
    /// token's text that overlaps a `plainText` range stays text.
    private func partition(_ bytes: [UInt8], parseSpecial: Bool, plainText: [Range<Int>]) -> [Fragment] {
        guard !bytes.isEmpty else { return [] }
        var fragments: [Fragment] = [.text(0..<bytes.count)]
        let present = presentSpecials(bytes, parseSpecial: parseSpecial)
        guard !present.isEmpty else { return fragments }
        bytes.withUnsafeBufferPointer { buf in
            for k in present {
                let special = specials[k]
                var next: [Fragment] = []
                next.reserveCapacity(fragments.count + 4)
                for fragment in fragments {
                    guard case let .text(range) = fragment else {
                        next.append(fragment)
                        continue
                    }
                    var from = range.lowerBound
                    var search = from
                    while let hit = Self.find(special.bytes, in: buf, from: search, to: range.upperBound) {
                        if special.needsParseSpecial, plainText.contains(where: { $0.overlaps(hit..<hit + special.bytes.count) }) {
                            search = hit + 1
                            continue
                        }
                        if hit > from { next.append(.text(from..<hit)) }
                        next.append(.token(special.id))
                        from = hit + special.bytes.count
                        if special.stripsRight {
                            while from < range.upperBound, Self.isCSpace(buf[from]) { from += 1 }
                        }
                        search = from
                    }
                    if from < range.upperBound { next.append(.text(from..<range.upperBound)) }
                }
                fragments = next
            }
        }
        return fragments
    }

    /// Positions in `specials` (ascending, so longest first) of the special tokens that occur in
    /// the text at all; usually none or a few.
    private func presentSpecials(_ bytes: [UInt8], parseSpecial: Bool) -> [Int] {
        var present = Set<Int>()
        bytes.withUnsafeBufferPointer { buf in
            for i in 0..<buf.count {
                for k in specialsByLead[Int(buf[i])] where !present.contains(k) {
                    let s = specials[k]
                    if (parseSpecial || !s.needsParseSpecial) && Self.matches(s.bytes, in: buf, at: i) { present.insert(k) }
                }
            }
        }
        return present.sorted()
    }

    /// C's isspace in the "C" locale, which llama.cpp uses for stripping.
    private static func isCSpace(_ b: UInt8) -> Bool { b == 0x20 || (0x09...0x0D).contains(b) }

    @inline(__always)
    private static func matches(_ needle: [UInt8], in buf: UnsafeBufferPointer<UInt8>, at i: Int) -> Bool {
        guard !needle.isEmpty, i + needle.count <= buf.count else { return false }
        for k in 0..<needle.count where buf[i + k] != needle[k] { return false }
        return true
    }

    private static func find(_ needle: [UInt8], in buf: UnsafeBufferPointer<UInt8>, from: Int, to: Int) -> Int? {
        guard let first = needle.first, to - from >= needle.count else { return nil }
        var i = from
        let last = to - needle.count
        while i <= last {
            if buf[i] == first && matches(needle, in: buf, at: i) { return i }
            i += 1
        }
        return nil
    }

    // MARK: pieces

    /// llama.cpp's token_to_piece with special = true.
    private static func renderPiece(_ v: Vocabulary, _ id: Int) -> [UInt8] {
        let text = v.tokens[id]
        switch v.types[id] {
        case .control, .unknown, .userDefined:
            return Array(text.utf8)
        case .normal:
            switch v.model {
            case .sentencePiece:
                return Array(text.replacingOccurrences(of: "\u{2581}", with: " ").utf8)
            case .bytePairEncoding:
                return byteLevelDecode(text)
            }
        case .byte:
            return [byteTokenValue(text)]
        case .unused, .undefined:
            return []
        }
    }

    /// llama.cpp's llama_decode_text: byte-level code points back to bytes; a code point outside
    /// the byte map is written as `[UNK_BYTE_0x<hex>` followed by the whole text and `]`.
    private static func byteLevelDecode(_ text: String) -> [UInt8] {
        var out: [UInt8] = []
        for s in text.unicodeScalars {
            if let b = ByteLevel.codepointToByte[s.value] {
                out.append(b)
            } else {
                out += Array("[UNK_BYTE_0x".utf8)
                for b in String(s).utf8 { out += Array(hex2(b).utf8) }
                out += Array(text.utf8) + [UInt8(ascii: "]")]
            }
        }
        return out
    }

    private static func hex2(_ b: UInt8) -> String {
        let digits = Array("0123456789abcdef")
        return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
    }

    /// The byte of a `<0xNN>` token: the two characters after `<0x` read as hex, 0 when they
    /// are not hex (llama.cpp's strtol on text.substr(3, 2)).
    private static func byteTokenValue(_ text: String) -> UInt8 {
        let u = Array(text.utf8)
        guard u.count >= 4 else { return 0 }
        var value: UInt8 = 0
        for c in u[3..<min(5, u.count)] {
            let d: UInt8
            switch c {
            case 0x30...0x39: d = c - 0x30
            case 0x41...0x46: d = c - 0x41 + 10
            case 0x61...0x66: d = c - 0x61 + 10
            default: return value
            }
            value = value << 4 | d
        }
        return value
    }

    /// llama.cpp's clean_spaces passes, in place and in the same order: drop the space before
    /// `?!.,`, around a lone apostrophe, and before 's 'm 're 've.
    static func cleanSpaces(_ text: inout [UInt8]) {
        let sp = UInt8(ascii: " "), ap = UInt8(ascii: "'")
        var total = text.count
        guard total > 0 else { return }

        let total1 = total
        total = 1
        for i in 1..<max(total1, 1) {
            let x = text[i]
            if text[i - 1] == sp, x == UInt8(ascii: "?") || x == UInt8(ascii: "!") || x == UInt8(ascii: ".") || x == UInt8(ascii: ",") {
                total -= 1
            }
            text[total] = x
            total += 1
        }

        let total2 = total
        total = 1
        var i = 1
        while i < total2 {
            let x = text[i]
            if x == ap, i + 1 < total2, text[i - 1] == sp, text[i + 1] == sp {
                total -= 1
                i += 1
                text[i] = 0
            }
            text[total] = x
            total += 1
            i += 1
        }

        let total3 = total
        total = 1
        for i in 1..<max(total3, 1) {
            let x = text[i]
            if text[i - 1] == sp, x == ap, i + 1 < total3 {
                let x1 = text[i + 1]
                if x1 == UInt8(ascii: "t") || x1 == UInt8(ascii: "d") {
                } else if x1 == UInt8(ascii: "s") || x1 == UInt8(ascii: "m") {
                    total -= 1
                } else if i + 2 < total3 {
                    let x2 = text[i + 2]
                    if (x1 == UInt8(ascii: "r") && x2 == UInt8(ascii: "e")) || (x1 == UInt8(ascii: "v") && x2 == UInt8(ascii: "e")) {
                        total -= 1
                    }
                }
            }
            text[total] = x
            total += 1
        }
        text.removeSubrange(total...)
    }
}
