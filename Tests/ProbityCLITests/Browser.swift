// Loads a page in headless Chromium through scripts/lib/browser-check.py and decodes what it saw:
// console messages, exceptions, network requests, the values of JavaScript expressions evaluated
// in order (some act on the page), and the screenshot's measurements.

import Foundation
import ProbityFormats
import ProbityTestSupport

/// What the browser saw of one page.
struct BrowserRun: Decodable {
    struct Message: Decodable { let level: String; let text: String }
    struct Request: Decodable { let url: String; let blocked: String? }
    struct Screenshot: Decodable {
        let path: String
        let width: Int
        let height: Int
        let distinctColors: Int
        let mostCommonFraction: Double
        /// Standard deviation of the pixels' luma (0–255): near 0 for a page of one colour.
        let lumaStddev: Double

        enum CodingKeys: String, CodingKey {
            case path, width, height, distinctColors = "distinct_colors", mostCommonFraction = "most_common_fraction"
            case lumaStddev = "luma_stddev"
        }

        /// Why the screenshot looks blank (one background, a few stray pixels), or nil when it shows
        /// a page: many colours, no colour on nearly every pixel, and luma that varies.
        var blankness: String? {
            var reasons: [String] = []
            if distinctColors < 64 { reasons.append("\(distinctColors) colours") }
            if mostCommonFraction >= 0.97 { reasons.append("the commonest colour on \(mostCommonFraction) of pixels") }
            if lumaStddev < 12 { reasons.append("luma standard deviation \(lumaStddev)") }
            return reasons.isEmpty ? nil : "a blank-looking screenshot: " + reasons.joined(separator: ", ")
        }
    }

    /// A JavaScript value returned by an expression (or the error it threw).
    enum Value: Decodable, Equatable {
        case null, bool(Bool), number(Double), string(String), array([Value]), object([String: Value])

        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if c.decodeNil() { self = .null }
            else if let b = try? c.decode(Bool.self) { self = .bool(b) }
            else if let n = try? c.decode(Double.self) { self = .number(n) }
            else if let s = try? c.decode(String.self) { self = .string(s) }
            else if let a = try? c.decode([Value].self) { self = .array(a) }
            else { self = .object(try c.decode([String: Value].self)) }
        }

        var int: Int? { if case .number(let n) = self, n == n.rounded() { return Int(n) } else { return nil } }
        var string: String? { if case .string(let s) = self { return s } else { return nil } }
        var bool: Bool? { if case .bool(let b) = self { return b } else { return nil } }
        var array: [Value]? { if case .array(let a) = self { return a } else { return nil } }
        var number: Double? { if case .number(let n) = self { return n } else { return nil } }
    }

    let url: String
    let title: String?
    let console: [Message]
    let exceptions: [String]
    /// Every request the page started (the page itself aside), and why it failed, if it did.
    let requests: [Request]
    let evals: [String: Value]
    let screenshot: Screenshot?

    /// Console messages at error level (CSP violations and failed loads among them).
    var errors: [Message] { console.filter { $0.level == "error" } }

    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// Loads `page` and evaluates `evals` (name, expression) in order; a screenshot to `screenshot`.
    static func load(_ page: String, evals: [(String, String)], screenshot: String? = nil,
                     width: Int = 1280, height: Int = 900, mobile: Bool = false) throws -> BrowserRun {
        _ = try TestData.chromium()
        _ = try TestData.devToolsClient()
        var arguments = [repo.appendingPathComponent("scripts/lib/browser-check.py").path, page,
                         "--width", "\(width)", "--height", "\(height)"]
        if mobile { arguments.append("--mobile") }
        if let screenshot { arguments += ["--screenshot", screenshot] }
        for (name, expression) in evals { arguments += ["--eval", "\(name)=\(expression)"] }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3"] + arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        let errors = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw BrowserFailure(description: "browser-check.py exited \(process.terminationStatus): \(String(decoding: errors, as: UTF8.self))")
        }
        try StrictJSON.validate(data, path: "browser-check.py output")
        return try JSONDecoder().decode(BrowserRun.self, from: data)
    }
}

/// The browser driver failed (a missing browser is reported by `TestData` before it runs).
struct BrowserFailure: Error, CustomStringConvertible {
    let description: String
}
