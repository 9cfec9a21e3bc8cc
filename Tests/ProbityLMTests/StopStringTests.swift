// Stop strings over streamed chunks: cuts, held-back tails, multibyte text, any chunking.

import ProbityTensor
import Testing
import ProbityLM

/// Feeds chunks one by one; returns what was emitted per chunk and the final flush.
private func stream(_ stops: [String], _ chunks: [String]) throws -> (pieces: [String], stopped: Bool, tail: String) {
    var matcher = try StopStringMatcher(stops)
    var pieces: [String] = []
    var stopped = false
    for chunk in chunks {
        let out = matcher.feed(chunk)
        pieces.append(out.text)
        stopped = out.stopped
    }
    return (pieces, stopped, matcher.finish())
}

@Suite struct StopStringTests {
    @Test func stopInsideOneChunk() throws {
        let r = try stream(["<|im_end|>"], ["Hello<|im_end|>rest"])
        #expect(r.pieces == ["Hello"])
        #expect(r.stopped)
        #expect(r.tail == "")
    }

    @Test func stopSpanningChunks() throws {
        let r = try stream(["<|im_end|>"], ["Hel", "lo <|im", "_en", "d|> more", "ignored"])
        #expect(r.pieces == ["Hel", "lo ", "", "", ""])
        #expect(r.stopped)
    }

    @Test func falseStartIsReleased() throws {
        let r = try stream(["\n\nUser:"], ["a\n", "\nUs", "b", "c"])
        // "\n" might begin the stop string, then "\n\nUs" might, then "b" rules it out.
        #expect(r.pieces == ["a", "", "\n\nUsb", "c"])
        #expect(!r.stopped)
        #expect(r.tail == "")
    }

    @Test func heldTailIsFlushedAtTheEnd() throws {
        let r = try stream(["<end>"], ["abc<", "en"])
        #expect(r.pieces == ["abc", ""])
        #expect(!r.stopped)
        #expect(r.tail == "<en")
    }

    @Test func earliestStopWinsAndIsReported() throws {
        var matcher = try StopStringMatcher(["STOP", "END"])
        #expect(matcher.feed("xxENDyySTOP") == ("xx", true))
        #expect(matcher.matched == "END")
        #expect(matcher.feed("more") == ("", true))
        // A stop string inside another that starts earlier: the earlier start wins.
        var nested = try StopStringMatcher(["bc", "abcd"])
        #expect(nested.feed("zabcd") == ("z", true))
        #expect(nested.matched == "abcd")
    }

    @Test func multibyteText() throws {
        let r = try stream(["🛑", "。"], ["你好", "，世界", "🛑", "再见"])
        #expect(r.pieces == ["你好", "，世界", "", ""])
        #expect(r.stopped)
        // A stop string whose first character is shared with the text.
        let s = try stream(["éclair"], ["caf", "é", " é", "cla", "t"])
        #expect(s.pieces.joined() + s.tail == "café éclat")
        #expect(s.pieces == ["caf", "", "é ", "", "éclat"])
    }

    @Test func noStopsEmitsEverythingAtOnce() throws {
        let r = try stream([], ["a", "b<"])
        #expect(r.pieces == ["a", "b<"])
    }

    @Test func anyChunkingGivesTheSameText() throws {
        let text = "The answer is 4.\n\nUser: and 5? <|im_end|> trailing"
        let stops = ["<|im_end|>", "\n\nUser:"]
        let bytes = Array(text)  // split on characters so chunks stay whole scalars
        var g = Xoshiro256StarStar(seed: 99)
        for _ in 0..<200 {
            var chunks: [String] = []
            var i = 0
            while i < bytes.count {
                let n = 1 + Int(g.next() % 6)
                chunks.append(String(bytes[i..<min(i + n, bytes.count)]))
                i += n
            }
            let r = try stream(stops, chunks)
            #expect(r.pieces.joined() + r.tail == "The answer is 4.")
            #expect(r.stopped)
        }
    }

    @Test func emptyStopStringIsAnInputError() {
        #expect(throws: GenerationError.emptyStopString(index: 1)) { try StopStringMatcher(["x", ""]) }
    }
}
