// What `probity rules test --json` prints: one record per embedded test and the counts. Keys are
// pinned here and described by docs/rules-test.schema.json.

import Foundation

/// The result of running rules' embedded tests (docs/rules.md, "Commands").
public struct RuleTestReport: Codable, Sendable, Equatable {
    public var tests: [Record]
    public var passed: Int
    public var failed: Int

    public init(tests: [Record], passed: Int, failed: Int) {
        self.tests = tests
        self.passed = passed
        self.failed = failed
    }

    /// One test: where it is, what it expected, each watched feature's peak against its
    /// threshold, the text generated, and whether it passed.
    public struct Record: Codable, Sendable, Equatable {
        public var rule: String
        /// The test's name, or `#N` (its place among the rule's tests, from 1).
        public var test: String
        public var file: String
        public var line: Int
        public var column: Int
        /// `fires` or `silent`.
        public var expect: String
        public var fired: Bool
        /// The position where the rule fired, when it did.
        public var firedAt: Int?
        public var aggregate: String
        public var minTokens: Int
        /// The largest count reached, for a rule with `aggregate: count`.
        public var count: Int?
        public var observed: [Observation]
        public var output: String
        public var problems: [String]
        public var pass: Bool

        enum CodingKeys: String, CodingKey {
            case rule, test, file, line, column, expect, fired, aggregate, count, observed, output, problems, pass
            case firedAt = "fired_at"
            case minTokens = "min_tokens"
        }

        public init(rule: String, test: String, file: String, line: Int, column: Int, expect: String, fired: Bool,
                    firedAt: Int?, aggregate: String, minTokens: Int, count: Int?, observed: [Observation],
                    output: String, problems: [String]) {
            self.rule = rule
            self.test = test
            self.file = file
            self.line = line
            self.column = column
            self.expect = expect
            self.fired = fired
            self.firedAt = firedAt
            self.aggregate = aggregate
            self.minTokens = minTokens
            self.count = count
            self.observed = observed
            self.output = output
            self.problems = problems
            self.pass = problems.isEmpty
        }
    }

    /// A watched feature's peak (null when the rule was never judged: scope too small) and its
    /// threshold. Floats go out in their shortest form (-7.2, not -7.199999809265137).
    public struct Observation: Codable, Sendable, Equatable {
        public var feature: String
        public var value: Float?
        public var threshold: Float?

        public init(feature: String, value: Float?, threshold: Float?) {
            self.feature = feature
            self.value = value.flatMap { $0.isFinite ? $0 : nil }
            self.threshold = threshold.flatMap { $0.isFinite ? $0 : nil }
        }

        enum CodingKeys: String, CodingKey { case feature, value, threshold }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(feature, forKey: .feature)
            // Always present: null says "never reached", an absent key would say nothing.
            try c.encode(value, forKey: .value)
            try c.encode(threshold, forKey: .threshold)
        }
    }

    /// The report as pretty-printed JSON with sorted keys.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }
}
