// The fingerprint of one labelled exchange: what a pack records for every item that derived or
// calibrated it, and what `probity eval` compares against so that no item scores the direction it
// helped to make. Defined on the text, not on the file, so a copy of an item in another file, with
// other ids, labels or whitespace, has the same fingerprint. scripts/lib/fingerprint.py computes the
// same value; docs/eval.md states the definition.

import Foundation
import ProbityLM

/// `probity-item-v1`: the SHA-256 (lowercase hex) of the exchange's turns, in order, each written as
/// `role U+001F text` and joined by U+001E, where a turn's text has its whitespace runs collapsed to
/// one space and is trimmed at both ends. The judged reply, when there is one, is the last turn, with
/// role `assistant`; a raw-text prompt is one turn with role `text`.
public enum ItemFingerprint {
    /// The scheme's name, recorded next to the fingerprints.
    public static let scheme = "probity-item-v1"

    /// The fingerprint of a conversation followed by the assistant's `response` (nil: none).
    public static func of(messages: [ChatMessage], response: String?) -> String {
        var turns = messages.map { ($0.role.rawValue, $0.content) }
        if let response { turns.append(("assistant", response)) }
        return of(turns: turns)
    }

    /// The fingerprint of a raw-text prompt.
    public static func of(text: String) -> String { of(turns: [("text", text)]) }

    /// The fingerprint of `(role, text)` turns.
    public static func of(turns: [(role: String, text: String)]) -> String {
        let joined = turns.map { $0.role + "\u{1F}" + normalized($0.text) }.joined(separator: "\u{1E}")
        return SHA256.hex(Array(joined.utf8))
    }

    /// Whitespace runs (Unicode White_Space) collapsed to one space, trimmed at both ends.
    static func normalized(_ text: String) -> String {
        text.unicodeScalars.split(whereSeparator: { $0.properties.isWhitespace }).map { String(String.UnicodeScalarView($0)) }
            .joined(separator: " ")
    }
}
