// The located YAML tree: every node knows the file, line and column it came from, and its typed
// accessors throw errors that say where and what was found ("expected a number, found string 'abc'").
// Scalars resolve by the strict schema documented in docs/rules.md ("YAML scalars").

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
        let bytes = Array(text.utf8)
        if isDecimalInteger(bytes) {
            // Too large for Int: still a number, kept as a float so nothing silently wraps.
            if let v = Int(text) { return YAMLScalar(text: text, kind: .int(v)) }
            if let d = Double(text) { return YAMLScalar(text: text, kind: .float(d)) }
        }
        if isDecimalFloat(bytes), let d = Double(text), d.isFinite {
            return YAMLScalar(text: text, kind: .float(d))
        }
        return YAMLScalar(text: text, kind: .string)
    }

    /// `[-+]?(0|[1-9][0-9]*)`
    static func isDecimalInteger(_ b: [UInt8]) -> Bool {
        var i = 0
        if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { i += 1 }
        let digits = b[i...]
        guard !digits.isEmpty, digits.allSatisfy(isDigit) else { return false }
        return digits.count == 1 || digits.first != UInt8(ascii: "0")
    }

    /// `[-+]?(0|[1-9][0-9]*)?(\.[0-9]*)?([eE][-+]?[0-9]+)?` with at least one digit before the
    /// exponent and a point or an exponent present.
    static func isDecimalFloat(_ b: [UInt8]) -> Bool {
        var i = 0
        if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { i += 1 }
        let intStart = i
        while i < b.count, isDigit(b[i]) { i += 1 }
        let intDigits = i - intStart
        if intDigits > 1, b[intStart] == UInt8(ascii: "0") { return false }
        var fracDigits = 0, hasPoint = false, hasExponent = false
        if i < b.count, b[i] == UInt8(ascii: ".") {
            hasPoint = true
            i += 1
            while i < b.count, isDigit(b[i]) { i += 1; fracDigits += 1 }
        }
        guard intDigits + fracDigits > 0 else { return false }
        if i < b.count, b[i] == UInt8(ascii: "e") || b[i] == UInt8(ascii: "E") {
            hasExponent = true
            i += 1
            if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { i += 1 }
            let expStart = i
            while i < b.count, isDigit(b[i]) { i += 1 }
            guard i > expStart else { return false }
        }
        return i == b.count && (hasPoint || hasExponent)
    }

    private static func isDigit(_ c: UInt8) -> Bool { c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9") }
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
