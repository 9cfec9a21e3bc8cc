// A safetensors file (huggingface/safetensors format): an 8-byte little-endian header length, a
// JSON header of tensor entries and `__metadata__`, then the data. Memory-mapped; validated at open.

import Foundation
import ProbityTensor

/// Element types of safetensors, by the names the header uses.
public enum SafeTensorDType: String, Sendable, CaseIterable {
    case f64 = "F64", f32 = "F32", f16 = "F16", bf16 = "BF16"
    case f8e4m3 = "F8_E4M3", f8e5m2 = "F8_E5M2"
    case i64 = "I64", i32 = "I32", i16 = "I16", i8 = "I8"
    case u64 = "U64", u32 = "U32", u16 = "U16", u8 = "U8"
    case bool = "BOOL"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .f8e4m3, .f8e5m2, .i8, .u8, .bool: return 1
        }
    }
}

/// One tensor of a safetensors file.
public struct SafeTensorInfo: Sendable, Equatable {
    public let name: String
    public let dtype: SafeTensorDType
    /// Row-major, as safetensors stores it: the last dimension is contiguous.
    public let shape: [Int]
    /// Byte range relative to the start of the data section.
    public let dataRange: Range<Int>

    public init(name: String, dtype: SafeTensorDType, shape: [Int], dataRange: Range<Int>) {
        self.name = name
        self.dtype = dtype
        self.shape = shape
        self.dataRange = dataRange
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var byteCount: Int { dataRange.count }
}

/// Caps for safetensors headers.
public enum SafeTensorsLimits {
    /// Largest JSON header accepted, as the reference implementation caps it.
    public static let maxHeaderLength = 100_000_000
    /// Most dimensions of one tensor.
    public static let maxDimensions = 16
    /// Most JSON values in the header (each tensor's entry is about 8, an SAE's header about 40, a
    /// 7B model's single-file header about 2,600). Foundation's tree costs about 250 bytes a value,
    /// so the header length cap alone let a 97 MB header of short metadata entries take 2.2 GB;
    /// this many values take at most about 64 MiB.
    public static let maxHeaderValues = 1 << 18
}

/// An open, validated safetensors file. Tensor data are views into the map, never copies.
public final class SafeTensorsFile: @unchecked Sendable {
    // Immutable after init; `bytes` points into `owner` (a read-only map or a private copy).
    public let path: String
    /// Tensors ordered by their position in the data section.
    public let tensors: [SafeTensorInfo]
    /// The header's `__metadata__` (string to string); empty when absent.
    public let metadata: [String: String]
    /// Byte offset of the data section from the start of the file (8 + header length).
    public let dataOffset: Int
    public var fileSize: Int { bytes.count }

    private let owner: AnyObject
    private let bytes: UnsafeRawBufferPointer
    private let index: [String: Int]

    public convenience init(path: String) throws {
        let map = try MappedFile(path: path)
        try self.init(owner: map, bytes: map.bytes, path: path)
    }

    /// Parses safetensors bytes held in memory (a private copy is kept); `name` appears in errors.
    public convenience init(bytes: [UInt8], name: String) throws {
        let copy = OwnedBytes(bytes)
        try self.init(owner: copy, bytes: copy.bytes, path: name)
    }

    private init(owner: AnyObject, bytes: UnsafeRawBufferPointer, path: String) throws {
        self.owner = owner
        self.bytes = bytes
        self.path = path
        var cursor = ByteCursor(bytes: bytes, path: path)
        let length = try cursor.readUInt64("header length")
        try cursor.requireLength(length, at: 0, "header length")
        guard length <= UInt64(SafeTensorsLimits.maxHeaderLength) else {
            throw FormatError.headerTooLarge(path: path, length: length, limit: SafeTensorsLimits.maxHeaderLength)
        }
        let header = try cursor.readBytes(Int(length), "header")
        dataOffset = cursor.offset
        let parsed = try SafeTensorsHeader.parse(Data(header), path: path, dataSize: cursor.remaining)
        tensors = parsed.tensors
        metadata = parsed.metadata
        var index: [String: Int] = [:]
        for (i, t) in tensors.enumerated() { index[t.name] = i }
        self.index = index
    }

    public func tensor(named name: String) -> SafeTensorInfo? { index[name].map { tensors[$0] } }

    /// The tensor's bytes: a view into the map, valid while this file lives.
    public func data(for tensor: SafeTensorInfo) -> UnsafeRawBufferPointer {
        let start = dataOffset + tensor.dataRange.lowerBound
        let end = dataOffset + tensor.dataRange.upperBound
        precondition(tensor.dataRange.lowerBound >= 0 && end <= bytes.count, "tensor info from another file")
        return UnsafeRawBufferPointer(rebasing: bytes[start..<end])
    }

    /// The tensor's elements converted to `Float`, row-major. F32, F16, BF16 and F64 only.
    /// - Complexity: O(elements); this is a copy.
    public func floats(for tensor: SafeTensorInfo) throws -> [Float] {
        let raw = data(for: tensor)
        let n = tensor.elementCount
        switch tensor.dtype {
        case .f32:
            return (0..<n).map { Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self))) }
        case .f64:
            return (0..<n).map { Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self)))) }
        case .f16:
            return (0..<n).map { floatFromHalf(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) }
        case .bf16:
            return (0..<n).map { Float(bitPattern: UInt32(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: 2 * $0, as: UInt16.self))) << 16) }
        default:
            throw FormatError.unsupported(path: path, what: "tensor '\(tensor.name)': cannot convert dtype \(tensor.dtype.rawValue) to floats (expected F32, F16, BF16 or F64)")
        }
    }

    /// `floats(for:)` by name; throws if the tensor is absent.
    public func floats(named name: String) throws -> [Float] {
        guard let t = tensor(named: name) else {
            throw FormatError.badHeaderField(path: path, at: name, expected: "a tensor named '\(name)'", found: "none")
        }
        return try floats(for: t)
    }
}

/// IEEE 754 half precision to single, exactly (every half is a float).
func floatFromHalf(_ h: UInt16) -> Float {
    let sign = UInt32(h & 0x8000) << 16
    let exponent = Int(h >> 10) & 0x1F
    let mantissa = UInt32(h & 0x3FF)
    switch exponent {
    case 0:
        // Zero or subnormal: mantissa × 2^-24.
        let magnitude = Float(mantissa) * 0x1p-24
        return sign == 0 ? magnitude : -magnitude
    case 31:
        return Float(bitPattern: sign | 0x7F80_0000 | (mantissa << 13))
    default:
        return Float(bitPattern: sign | UInt32(exponent + 112) << 23 | (mantissa << 13))
    }
}

/// Validation of the JSON header against the data section's size.
enum SafeTensorsHeader {
    static func parse(_ json: Data, path: String, dataSize: Int) throws -> (tensors: [SafeTensorInfo], metadata: [String: String]) {
        // Strict first: Foundation alone accepts trailing commas and comments that safetensors refuses.
        let object = try StrictJSON.object(from: json, path: path, what: "header", fileOffset: 8, line: nil,
                                           maxValues: SafeTensorsLimits.maxHeaderValues)
        guard let top = object as? [String: Any] else {
            throw FormatError.badHeaderField(path: path, at: "(header)", expected: "a JSON object", found: describe(object))
        }
        var metadata: [String: String] = [:]
        var tensors: [SafeTensorInfo] = []
        for (name, value) in top {
            if name == "__metadata__" {
                guard let m = value as? [String: Any] else {
                    throw FormatError.badHeaderField(path: path, at: name, expected: "an object of strings", found: describe(value))
                }
                for (k, v) in m {
                    guard let s = v as? String else {
                        throw FormatError.badHeaderField(path: path, at: "__metadata__.\(k)", expected: "a string", found: describe(v))
                    }
                    metadata[k] = s
                }
                continue
            }
            tensors.append(try tensorInfo(name: name, value, path: path, dataSize: dataSize))
        }
        tensors.sort { ($0.dataRange.lowerBound, $0.dataRange.upperBound, $0.name) < ($1.dataRange.lowerBound, $1.dataRange.upperBound, $1.name) }
        // As the safetensors library validates a header: in offset order, each tensor starts where
        // the one before ends (the first at 0), and the last ends where the file does. No gaps,
        // no overlaps, no trailing bytes.
        var end = 0
        var previous: SafeTensorInfo?
        for t in tensors {
            if t.dataRange.lowerBound < end, let previous {
                throw FormatError.overlappingTensors(path: path, first: previous.name, second: t.name,
                                                     firstEnd: end, secondStart: t.dataRange.lowerBound)
            }
            guard t.dataRange.lowerBound == end else {
                throw FormatError.tensorGap(path: path, tensor: t.name, expected: end, found: t.dataRange.lowerBound,
                                            after: previous?.name)
            }
            end = t.dataRange.upperBound
            previous = t
        }
        guard end == dataSize else { throw FormatError.dataSizeMismatch(path: path, covered: end, size: dataSize) }
        return (tensors, metadata)
    }

    static let fields: Set<String> = ["dtype", "shape", "data_offsets"]

    static func tensorInfo(name: String, _ value: Any, path: String, dataSize: Int) throws -> SafeTensorInfo {
        guard let entry = value as? [String: Any] else {
            throw FormatError.badHeaderField(path: path, at: name, expected: "an object with dtype, shape and data_offsets",
                                             found: describe(value))
        }
        if let extra = entry.keys.sorted().first(where: { !fields.contains($0) }) {
            throw FormatError.badHeaderField(path: path, at: "\(name).\(extra)", expected: "only dtype, shape and data_offsets",
                                             found: "an extra field")
        }
        guard let dtypeValue = entry["dtype"] else {
            throw FormatError.badHeaderField(path: path, at: "\(name).dtype", expected: "a dtype string", found: "nothing")
        }
        guard let dtypeName = dtypeValue as? String else {
            throw FormatError.badHeaderField(path: path, at: "\(name).dtype", expected: "a dtype string", found: describe(dtypeValue))
        }
        guard let dtype = SafeTensorDType(rawValue: dtypeName) else {
            throw FormatError.unknownDType(path: path, tensor: name, dtype: dtypeName)
        }
        guard let shapeValue = entry["shape"] as? [Any], shapeValue.count <= SafeTensorsLimits.maxDimensions,
              let shape = integers(shapeValue) else {
            throw FormatError.badHeaderField(path: path, at: "\(name).shape",
                                             expected: "an array of at most \(SafeTensorsLimits.maxDimensions) non-negative integers",
                                             found: describe(entry["shape"]))
        }
        guard let offsetsValue = entry["data_offsets"] as? [Any], let offsets = integers(offsetsValue),
              offsets.count == 2, offsets[0] <= offsets[1] else {
            throw FormatError.badHeaderField(path: path, at: "\(name).data_offsets",
                                             expected: "[begin, end] with 0 <= begin <= end", found: describe(entry["data_offsets"]))
        }
        var elements = 1
        for d in shape {
            let (p, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw FormatError.elementCountOverflow(path: path, tensor: name, shape: shape) }
            elements = p
        }
        let (expected, overflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw FormatError.elementCountOverflow(path: path, tensor: name, shape: shape) }
        let found = offsets[1] - offsets[0]
        guard expected == found else {
            throw FormatError.sizeMismatch(path: path, tensor: name, expected: expected, found: found)
        }
        guard offsets[1] <= dataSize else {
            throw FormatError.tensorOutOfBounds(path: path, tensor: name, start: UInt64(offsets[0]), count: found, available: dataSize)
        }
        return SafeTensorInfo(name: name, dtype: dtype, shape: shape, dataRange: offsets[0]..<offsets[1])
    }

    /// The elements when all are JSON integers in 0...Int.max (not booleans, not fractions).
    static func integers(_ values: [Any]) -> [Int]? {
        var out: [Int] = []
        for v in values {
            guard let n = v as? NSNumber, !isBoolean(n), !isFloatingPoint(n), let i = Int(exactly: n.int64Value),
                  n.compare(NSNumber(value: Int64.max)) != .orderedDescending, i >= 0 else { return nil }
            out.append(i)
        }
        return out
    }

    static func isBoolean(_ n: NSNumber) -> Bool {
        let t = String(cString: n.objCType)
        return t == "c" || t == "B"
    }

    static func isFloatingPoint(_ n: NSNumber) -> Bool {
        let t = String(cString: n.objCType)
        return t == "d" || t == "f"
    }

    /// A short description of a JSON value for messages.
    static func describe(_ value: Any?) -> String {
        switch value {
        case nil: return "nothing"
        case is NSNull: return "null"
        case let s as String: return "the string \"\(s.prefix(40))\""
        case let n as NSNumber: return isBoolean(n) ? (n.boolValue ? "true" : "false") : "the number \(n)"
        case let a as [Any]: return "[" + a.prefix(4).map { compact($0) }.joined(separator: ", ") + (a.count > 4 ? ", …]" : "]")
        case is [String: Any]: return "an object"
        default: return "\(type(of: value))"
        }
    }

    static func compact(_ value: Any) -> String {
        switch value {
        case let s as String: return "\"\(s.prefix(20))\""
        case let n as NSNumber: return isBoolean(n) ? (n.boolValue ? "true" : "false") : "\(n)"
        default: return describe(value)
        }
    }
}
