// A GGUF metadata value: the 13 value types of the GGUF spec (ggml docs/gguf.md), arrays nested.
// The type ids are the ones gguf-py's GGUFValueType uses.

/// One metadata value as stored in a GGUF file.
public enum GGUFValue: Sendable, Equatable {
    case uint8(UInt8), int8(Int8), uint16(UInt16), int16(Int16), uint32(UInt32), int32(Int32)
    case uint64(UInt64), int64(Int64), float32(Float), float64(Double), bool(Bool), string(String)
    /// All elements share one value type in a file; nested arrays may differ from each other.
    case array(GGUFArray)

    /// The value when it is an integer of any width that fits in `Int`.
    public var intValue: Int? {
        switch self {
        case let .uint8(v): return Int(v)
        case let .int8(v): return Int(v)
        case let .uint16(v): return Int(v)
        case let .int16(v): return Int(v)
        case let .uint32(v): return Int(v)
        case let .int32(v): return Int(v)
        case let .uint64(v): return Int(exactly: v)
        case let .int64(v): return Int(v)
        default: return nil
        }
    }

    /// The value when it is a float or an integer.
    public var doubleValue: Double? {
        switch self {
        case let .float32(v): return Double(v)
        case let .float64(v): return v
        case let .uint64(v): return Double(v)
        default: return intValue.map(Double.init)
        }
    }

    public var stringValue: String? {
        if case let .string(s) = self { return s }
        return nil
    }

    public var boolValue: Bool? {
        if case let .bool(b) = self { return b }
        return nil
    }

    public var arrayValue: GGUFArray? {
        if case let .array(a) = self { return a }
        return nil
    }

    /// The elements when this is an array of strings only.
    public var stringArray: [String]? {
        guard case let .array(a) = self else { return nil }
        if let strings = a.strings { return strings }
        var out: [String] = []
        out.reserveCapacity(a.count)
        for v in a {
            guard case let .string(s) = v else { return nil }
            out.append(s)
        }
        return out
    }

    /// The elements as `Float` when this is an array of numbers (float32 exactly, others converted).
    public var floatArray: [Float]? {
        guard case let .array(a) = self else { return nil }
        if let floats = a.floats { return floats }
        var out: [Float] = []
        out.reserveCapacity(a.count)
        for v in a {
            if case let .float32(f) = v {
                out.append(f)
            } else if let d = v.doubleValue {
                out.append(Float(d))
            } else {
                return nil
            }
        }
        return out
    }

    /// The elements when this is an array of integers that all fit in `Int`.
    public var intArray: [Int]? {
        guard case let .array(a) = self else { return nil }
        var out: [Int] = []
        out.reserveCapacity(a.count)
        for v in a {
            guard let i = v.intValue else { return nil }
            out.append(i)
        }
        return out
    }

    /// The GGUF type name, e.g. `uint32`, `array[string]`, `array[array[int32]]`; for messages.
    public var typeName: String {
        switch self {
        case .uint8: return "uint8"
        case .int8: return "int8"
        case .uint16: return "uint16"
        case .int16: return "int16"
        case .uint32: return "uint32"
        case .int32: return "int32"
        case .uint64: return "uint64"
        case .int64: return "int64"
        case .float32: return "float32"
        case .float64: return "float64"
        case .bool: return "bool"
        case .string: return "string"
        case let .array(a): return "array[\(a.first?.typeName ?? "")]"
        }
    }

    /// The GGUF value type id (ggml docs/gguf.md `gguf_metadata_value_type`).
    public var typeID: UInt32 {
        switch self {
        case .uint8: return 0
        case .int8: return 1
        case .uint16: return 2
        case .int16: return 3
        case .uint32: return 4
        case .int32: return 5
        case .float32: return 6
        case .bool: return 7
        case .string: return 8
        case .array: return 9
        case .uint64: return 10
        case .int64: return 11
        case .float64: return 12
        }
    }

    /// A short rendering for listings: scalars in full, long strings and arrays abbreviated.
    public func summary(maxLength: Int = 60) -> String {
        switch self {
        case let .string(s):
            let escaped = s.unicodeScalars.map { $0.escaped(asASCII: false) }.joined()
            if escaped.count <= maxLength { return "\"\(escaped)\"" }
            return "\"\(escaped.prefix(maxLength))…\" (\(s.utf8.count) bytes)"
        case let .array(a):
            let head = a.prefix(3).map { $0.summary(maxLength: 20) }.joined(separator: ", ")
            return "\(typeName) (\(a.count)) [\(head)\(a.count > 3 ? ", …" : "")]"
        case let .bool(b): return b ? "true" : "false"
        case let .float32(f): return "\(f)"
        case let .float64(d): return "\(d)"
        case let .uint64(v): return "\(v)"
        default: return intValue.map(String.init) ?? typeName
        }
    }
}
