// An action's or detector's level: an absolute activation, or a multiple of the feature's max
// activation over the pack's reference corpus (`0.3x`). One parser reads the text form for rules,
// packs and `steer`'s flags alike, with the rules' strict decimal grammar.

/// An absolute activation, or N × the feature's max activation (written `Nx`).
public enum Level: Sendable, Equatable, CustomStringConvertible {
    case absolute(Double)
    case relative(Double)

    /// `2.5` or `0.3x`.
    public var description: String {
        switch self {
        case .absolute(let v): return formatNumber(v)
        case .relative(let v): return "\(formatNumber(v))x"
        }
    }

    /// In words: `2.5`, or `0.3 × the feature's max activation`.
    public var explained: String {
        switch self {
        case .absolute(let v): return formatNumber(v)
        case .relative(let v): return "\(formatNumber(v)) × the feature's max activation"
        }
    }

    /// Whether it needs the feature's max activation to mean anything.
    public var isRelative: Bool {
        if case .relative = self { return true }
        return false
    }

    /// Parses `2.5`, `-4` or `0.3x` (a decimal number, `DecimalNumber`'s grammar, with an optional
    /// trailing `x`); nil for anything else.
    public static func parse(_ text: String) -> Level? {
        if text.hasSuffix("x") { return DecimalNumber.parse(String(text.dropLast())).map(Level.relative) }
        return DecimalNumber.parse(text).map(Level.absolute)
    }

    /// The level as an activation: absolute as given, relative times `maxActivation` (nil when the
    /// feature records none).
    public func value(maxActivation: Double?) -> Float? {
        switch self {
        case .absolute(let v): return Float(v)
        case .relative(let n): return maxActivation.map { Float(n * $0) }
        }
    }
}

/// Decimal numbers as rule files and flags write them: an integer `[-+]?(0|[1-9][0-9]*)`, or a
/// float with a point or an exponent (`0.5`, `.5`, `2.`, `1e3`). No leading zeros, hex, `_`,
/// `inf` or `nan`, so a value means the same to every reader.
public enum DecimalNumber {
    /// The text's value as an integer or float; nil when it is neither.
    public enum Value: Sendable, Equatable {
        case int(Int)
        case float(Double)
    }

    /// Classifies `text`: an integer too large for `Int` is still a number, kept as a float so
    /// nothing silently wraps; a float must be finite.
    public static func value(_ text: String) -> Value? {
        let bytes = Array(text.utf8)
        if isInteger(bytes) {
            if let v = Int(text) { return .int(v) }
            if let d = Double(text) { return .float(d) }
        }
        if isFloat(bytes), let d = Double(text), d.isFinite { return .float(d) }
        return nil
    }

    /// The text's value as a Double, integer or float.
    public static func parse(_ text: String) -> Double? {
        switch value(text) {
        case .int(let v)?: return Double(v)
        case .float(let v)?: return v
        case nil: return nil
        }
    }

    /// `[-+]?(0|[1-9][0-9]*)`
    static func isInteger(_ b: [UInt8]) -> Bool {
        var i = 0
        if i < b.count, b[i] == UInt8(ascii: "-") || b[i] == UInt8(ascii: "+") { i += 1 }
        let digits = b[i...]
        guard !digits.isEmpty, digits.allSatisfy(isDigit) else { return false }
        return digits.count == 1 || digits.first != UInt8(ascii: "0")
    }

    /// `[-+]?(0|[1-9][0-9]*)?(\.[0-9]*)?([eE][-+]?[0-9]+)?` with at least one digit before the
    /// exponent and a point or an exponent present.
    static func isFloat(_ b: [UInt8]) -> Bool {
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

/// A number as a person writes it: `0.3`, `10`, `1e-05`.
public func formatNumber(_ v: Double) -> String {
    if v == v.rounded(), abs(v) < 1e15 { return String(Int(v)) }
    return "\(v)"
}
