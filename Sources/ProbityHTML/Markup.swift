// The few pieces of markup this module writes itself rather than through a template: SVG charts and
// data for the pages' script. Every text they carry goes through `Markup.escape`, the one escaping
// function outside the templates (which escape every `{{value}}` themselves).

import Foundation
import ProbityFeatures

enum Markup {
    /// `text` safe inside an HTML or SVG element or a double- or single-quoted attribute.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for ch in text.unicodeScalars {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(ch)
            }
        }
        return out
    }

    /// A number for display: fixed decimals, no exponent, "−" for negatives.
    static func number(_ x: Double, digits: Int = 3) -> String {
        guard x.isFinite else { return x.isNaN ? "n/a" : (x > 0 ? "∞" : "−∞") }
        let s = String(format: "%.\(digits)f", x)
        return s.hasPrefix("-") ? "−" + s.dropFirst() : s
    }

    /// A number for an SVG attribute (plain ASCII, two decimals).
    static func coordinate(_ x: Double) -> String { String(format: "%.2f", x.isFinite ? x : 0) }

    /// JSON text of `value` for a `data-` attribute (the template escapes it as any attribute value).
    static func json<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(value) else { return "{}" }
        return String(decoding: data, as: UTF8.self)
    }

    /// Base64 of the SHA-256 of `text`'s UTF-8, as a Content-Security-Policy hash source wants it.
    static func cspHash(_ text: String) -> String {
        let hex = SHA256.hex(Array(text.utf8))
        var bytes: [UInt8] = []
        var i = hex.startIndex
        while i < hex.endIndex {
            let j = hex.index(i, offsetBy: 2)
            bytes.append(UInt8(hex[i..<j], radix: 16) ?? 0)
            i = j
        }
        return "sha256-" + Data(bytes).base64EncodedString()
    }
}
