// Stop strings over streamed text: emit what is safe as soon as it is safe, hold back any tail
// that may be the start of a stop string, and cut before the first stop string, even when it
// spans chunks. Matching is on UTF-8 bytes, as llama.cpp's server does.

/// Watches streamed text for stop strings.
///
/// Feed each decoded chunk to `feed`; it returns the text that can be shown now and whether a
/// stop string has appeared. Text up to the stop string is emitted, the stop string and anything
/// after it are not. A tail that could still grow into a stop string is held back until the next
/// chunk decides it; call `finish` when generation ends without a stop to get that tail.
///
/// Chunks must be whole Unicode scalars (a streaming detokenizer holds back split UTF-8
/// sequences); emitted text then always is valid UTF-8. Matching compares bytes, so a stop
/// string "e" also matches the "e" of a decomposed "é" (e + U+0301).
public struct StopStringMatcher: Sendable {
    /// The stop strings, in the order given.
    public let stops: [String]
    /// The stop string that ended the text, once one has.
    public private(set) var matched: String?
    private let patterns: [[UInt8]]
    private var pending: [UInt8] = []

    /// A matcher for `stops`; an empty stop string is `GenerationError.emptyStopString`.
    public init(_ stops: [String]) throws {
        if let index = stops.firstIndex(where: \.isEmpty) { throw GenerationError.emptyStopString(index: index) }
        self.stops = stops
        patterns = stops.map { Array($0.utf8) }
    }

    /// Whether a stop string has been seen; after that every chunk is dropped.
    public var stopped: Bool { matched != nil }

    /// Takes the next chunk; returns the text safe to emit now, and whether a stop string matched
    /// (in this chunk or earlier).
    /// - Complexity: O((h + c) · s) for a held tail of h bytes, a chunk of c bytes and stop
    ///   strings of s bytes in all.
    public mutating func feed(_ chunk: String) -> (text: String, stopped: Bool) {
        guard matched == nil else { return ("", true) }
        pending.append(contentsOf: chunk.utf8)
        if let (start, stop) = firstMatch() {
            let text = String(decoding: pending[..<start], as: UTF8.self)
            pending.removeAll()
            matched = stops[stop]
            return (text, true)
        }
        let held = heldTail()
        let text = String(decoding: pending[..<(pending.count - held)], as: UTF8.self)
        pending.removeFirst(pending.count - held)
        return (text, false)
    }

    /// Ends the stream: returns the held-back tail (empty after a stop).
    public mutating func finish() -> String {
        defer { pending.removeAll() }
        return matched == nil ? String(decoding: pending, as: UTF8.self) : ""
    }

    /// The earliest position where a stop string occurs, and which one (the first listed wins a tie).
    private func firstMatch() -> (start: Int, stop: Int)? {
        var best: (start: Int, stop: Int)?
        for (index, pattern) in patterns.enumerated() {
            let limit = best.map { $0.start } ?? pending.count
            // Only a strictly earlier start can beat the best so far.
            if let start = firstOccurrence(of: pattern, before: limit) { best = (start, index) }
        }
        return best
    }

    /// The first start `< limit` at which `pattern` occurs in `pending`.
    private func firstOccurrence(of pattern: [UInt8], before limit: Int) -> Int? {
        guard pattern.count <= pending.count else { return nil }
        var start = 0
        while start < limit, start + pattern.count <= pending.count {
            if pending[start] == pattern[0], pending[start..<(start + pattern.count)].elementsEqual(pattern) {
                return start
            }
            start += 1
        }
        return nil
    }

    /// The length of the longest tail of `pending` that is a proper prefix of some stop string.
    private func heldTail() -> Int {
        var held = 0
        for pattern in patterns {
            var length = min(pattern.count - 1, pending.count)
            while length > held {
                if pending[(pending.count - length)...].elementsEqual(pattern[..<length]) {
                    held = length
                    break
                }
                length -= 1
            }
        }
        return held
    }
}
