// The located YAML tree: every node knows the file, line and column it came from, and its typed
// accessors throw errors that say where and what was found ("expected a number, found string 'abc'").
// Scalars resolve by the strict schema documented in docs/rules.md ("YAML scalars").

import ProbityFeatures

/// A resolved plain or quoted scalar.
public struct YAMLScalar: Sendable, Equatable {
    /// What a scalar is, decided once at load time.
    public enum Kind: Sendable, Equatable {
        case null
        case bool(Bool)
        case int(Int)
        case float(Double)
        case string
    }

    /// The text as written (after YAML unescaping and folding).
    public var text: String
    public var kind: Kind

    public init(text: String, kind: Kind) {
        self.text = text
        self.kind = kind
    }

    /// Resolves a plain (unquoted, untagged) scalar. Strict on purpose: only `true`/`false` are
    /// booleans (YAML 1.1's `yes`, `no`, `on`, `off` stay strings), only `null`, `~` and the empty
    /// scalar are null, integers are decimal without leading zeros, floats are decimal with a point
    /// or an exponent. Anything else is a string.
    public static func resolvePlain(_ text: String) -> YAMLScalar {
        switch text {
        case "", "~", "null": return YAMLScalar(text: text, kind: .null)
        case "true": return YAMLScalar(text: text, kind: .bool(true))
        case "false": return YAMLScalar(text: text, kind: .bool(false))
        default: break
        }
        switch DecimalNumber.value(text) {
        case .int(let v)?: return YAMLScalar(text: text, kind: .int(v))
        case .float(let v)?: return YAMLScalar(text: text, kind: .float(v))
        case nil: return YAMLScalar(text: text, kind: .string)
        }
    }
}

/// A key and its value in a mapping, both located.
public struct YAMLPair: Sendable {
    public var key: YAMLNode
    public var value: YAMLNode
}

/// A node of a loaded YAML document.
public struct YAMLNode: Sendable {
    public enum Content: Sendable {
        case scalar(YAMLScalar)
        case sequence([YAMLNode])
        /// Pairs in document order; keys are scalars and unique (the loader checks).
        case mapping([YAMLPair])
    }

    public var content: Content
    public var location: FileLocation

    public init(_ content: Content, at location: FileLocation) {
        self.content = content
        self.location = location
    }

    /// What this node is, for messages: `string 'abc'`, `integer 42`, `a mapping`.
    public var found: String {
        switch content {
        case .scalar(let s):
            switch s.kind {
            case .null: return "null"
            case .bool(let b): return "boolean \(b)"
            case .int: return "integer \(s.text)"
            case .float: return "float \(s.text)"
            case .string: return "string '\(Self.clip(s.text))'"
            }
        case .sequence: return "a sequence"
        case .mapping: return "a mapping"
        }
    }

    private static func clip(_ text: String) -> String {
        let oneLine = text.replacingOccurrences(of: "\n", with: "\\n")
        return oneLine.count > 40 ? String(oneLine.prefix(40)) + "…" : oneLine
    }

    private func mismatch(_ expected: String) -> RulesError {
        .type(location, expected: expected, found: found)
    }

    public var scalar: YAMLScalar? {
        if case .scalar(let s) = content { return s }
        return nil
    }

    public var isNull: Bool { scalar?.kind == .null }

    /// A string scalar. Numbers, booleans and null are not strings: quote them (`"1.0"`).
    public func string() throws(RulesError) -> String {
        guard let s = scalar, s.kind == .string else { throw mismatch("a string") }
        return s.text
    }

    /// An integer scalar; floats such as `2.0` are not integers.
    public func int() throws(RulesError) -> Int {
        guard case .int(let v)? = scalar?.kind else { throw mismatch("an integer") }
        return v
    }

    /// An integer or float scalar.
    public func number() throws(RulesError) -> Double {
        switch scalar?.kind {
        case .int(let v)?: return Double(v)
        case .float(let v)?: return v
        default: throw mismatch("a number")
        }
    }

    /// `true` or `false`.
    public func bool() throws(RulesError) -> Bool {
        guard case .bool(let v)? = scalar?.kind else { throw mismatch("a boolean (true or false)") }
        return v
    }

    public func sequence() throws(RulesError) -> [YAMLNode] {
        guard case .sequence(let items) = content else { throw mismatch("a sequence") }
        return items
    }

    public func mapping() throws(RulesError) -> [YAMLPair] {
        guard case .mapping(let pairs) = content else { throw mismatch("a mapping") }
        return pairs
    }

    /// The value for `key` in a mapping; nil when absent or when this is not a mapping.
    public subscript(key: String) -> YAMLNode? {
        guard case .mapping(let pairs) = content else { return nil }
        return pairs.first { $0.key.scalar?.text == key }?.value
    }
}
