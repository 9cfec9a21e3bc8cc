// Writes GGUF v3 files (ggml docs/gguf.md): metadata in insertion order, tensor infos, then each
// tensor's bytes at an offset aligned to `general.alignment`, padded with zeros.

import Foundation
import ProbityTensor

/// Builds a GGUF file in memory. Used for control vectors and test fixtures.
public struct GGUFWriter {
    /// Name used in error messages (the destination, when known).
    public var name: String
    public let version: UInt32
    /// Alignment of the data section and of every tensor's offset (a power of two).
    public let alignment: Int

    private var keys: [String] = []
    private var values: [String: GGUFValue] = [:]
    private var tensors: [(info: GGUFTensorInfo, data: [UInt8])] = []

    /// - Parameters:
    ///   - alignment: written as `general.alignment` (uint32) when it is not the default 32.
    ///   - version: 3, or 2 for files older readers need.
    public init(name: String = "output.gguf", alignment: Int = GGUFLimits.defaultAlignment, version: UInt32 = 3) {
        precondition(alignment > 0 && alignment & (alignment - 1) == 0, "alignment must be a power of two")
        precondition(version == 2 || version == 3, "GGUF writer supports versions 2 and 3")
        self.name = name
        self.alignment = alignment
        self.version = version
        if alignment != GGUFLimits.defaultAlignment {
            keys.append(GGUFKey.alignment)
            values[GGUFKey.alignment] = .uint32(UInt32(alignment))
        }
    }

    /// Sets a metadata value. A key set twice keeps its first position and its last value.
    /// Arrays must be homogeneous: every element the same type (nested arrays may differ inside).
    public mutating func set(_ key: String, _ value: GGUFValue) throws {
        if key == GGUFKey.alignment, value.intValue != alignment {
            throw FormatError.wrongValueType(path: name, key: key, expected: "\(alignment) (the writer's alignment)",
                                             found: value.summary())
        }
        try Self.checkHomogeneous(value, key: key, path: name)
        if values.updateValue(value, forKey: key) == nil { keys.append(key) }
    }

    /// Adds a tensor; `shape` is in ggml order (innermost first) and `data` its raw bytes.
    public mutating func addTensor(name tensorName: String, type: GGMLType, shape: [Int], data: [UInt8]) throws {
        guard tensorName.utf8.count <= GGUFLimits.maxTensorNameLength else {
            throw FormatError.limitExceeded(path: name, offset: 0, what: "tensor name length of '\(tensorName)'",
                                            value: UInt64(tensorName.utf8.count), limit: GGUFLimits.maxTensorNameLength)
        }
        guard !tensors.contains(where: { $0.info.name == tensorName }) else {
            throw FormatError.duplicateTensor(path: name, offset: 0, name: tensorName)
        }
        guard (1...GGUFLimits.maxDimensions).contains(shape.count) else {
            throw FormatError.badDimensionCount(path: name, offset: 0, tensor: tensorName, count: UInt32(clamping: shape.count))
        }
        var elements = 1
        for (i, d) in shape.enumerated() {
            guard d >= 1 else {
                throw FormatError.badDimension(path: name, offset: 0, tensor: tensorName, index: i,
                                               value: UInt64(bitPattern: Int64(d)))
            }
            let (p, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw FormatError.elementCountOverflow(path: name, tensor: tensorName, shape: shape) }
            elements = p
        }
        guard shape[0] % type.blockSize == 0 else {
            throw FormatError.partialBlock(path: name, tensor: tensorName, type: type.name, shape: shape,
                                           blockSize: type.blockSize)
        }
        guard let byteCount = type.byteCount(elements: elements) else {
            throw FormatError.elementCountOverflow(path: name, tensor: tensorName, shape: shape)
        }
        guard data.count == byteCount else {
            throw FormatError.sizeMismatch(path: name, tensor: tensorName, expected: byteCount, found: data.count)
        }
        let offset = tensors.last.map { alignUp($0.info.offset + $0.info.byteCount) } ?? 0
        tensors.append((GGUFTensorInfo(name: tensorName, type: type, shape: shape, offset: offset,
                                       byteCount: byteCount), data))
    }

    /// Adds an F32 tensor from floats (stored little-endian).
    public mutating func addTensor(name tensorName: String, shape: [Int], floats: [Float]) throws {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(floats.count * 4)
        for f in floats { withUnsafeBytes(of: f.bitPattern.littleEndian) { bytes.append(contentsOf: $0) } }
        try addTensor(name: tensorName, type: .f32, shape: shape, data: bytes)
    }

    /// The whole file.
    public func bytes() -> [UInt8] {
        var out: [UInt8] = []
        out.append(contentsOf: Array("GGUF".utf8))
        put(version, &out)
        put(UInt64(tensors.count), &out)
        put(UInt64(keys.count), &out)
        for key in keys {
            putString(key, &out)
            guard let value = values[key] else { continue }
            put(value.typeID, &out)
            putValue(value, &out)
        }
        for (info, _) in tensors {
            putString(info.name, &out)
            put(UInt32(info.shape.count), &out)
            for d in info.shape { put(UInt64(d), &out) }
            put(info.type.rawValue, &out)
            put(UInt64(info.offset), &out)
        }
        guard !tensors.isEmpty else { return out }
        pad(&out)
        let dataStart = out.count
        for (info, data) in tensors {
            out.append(contentsOf: repeatElement(0, count: dataStart + info.offset - out.count))
            out.append(contentsOf: data)
        }
        pad(&out)
        return out
    }

    /// Writes the file atomically (a temporary file renamed into place).
    public func write(to path: String) throws {
        do {
            try Data(bytes()).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw FormatError.cannotWrite(path: path, reason: error.localizedDescription)
        }
    }

    private func alignUp(_ n: Int) -> Int { (n + alignment - 1) / alignment * alignment }

    private func pad(_ out: inout [UInt8]) {
        out.append(contentsOf: repeatElement(0, count: alignUp(out.count) - out.count))
    }

    private func put<T: FixedWidthInteger>(_ v: T, _ out: inout [UInt8]) {
        withUnsafeBytes(of: v.littleEndian) { out.append(contentsOf: $0) }
    }

    private func putString(_ s: String, _ out: inout [UInt8]) {
        put(UInt64(s.utf8.count), &out)
        out.append(contentsOf: s.utf8)
    }

    private func putValue(_ value: GGUFValue, _ out: inout [UInt8]) {
        switch value {
        case let .uint8(v): put(v, &out)
        case let .int8(v): put(v, &out)
        case let .uint16(v): put(v, &out)
        case let .int16(v): put(v, &out)
        case let .uint32(v): put(v, &out)
        case let .int32(v): put(v, &out)
        case let .uint64(v): put(v, &out)
        case let .int64(v): put(v, &out)
        case let .float32(v): put(v.bitPattern, &out)
        case let .float64(v): put(v.bitPattern, &out)
        case let .bool(v): out.append(v ? 1 : 0)
        case let .string(s): putString(s, &out)
        case let .array(a):
            // An empty array built in code has no element type; it is written as uint8 (one read
            // from a file keeps the type it was declared with).
            put(a.elementTypeID ?? 0, &out)
            put(UInt64(a.count), &out)
            for v in a { putValue(v, &out) }
        }
    }

    private static func checkHomogeneous(_ value: GGUFValue, key: String, path: String) throws {
        guard case let .array(a) = value else { return }
        guard let first = a.first else { return }
        for v in a {
            guard v.typeID == first.typeID else {
                throw FormatError.wrongValueType(path: path, key: key,
                                                 expected: "array elements all of type \(first.typeName)",
                                                 found: "an element of type \(v.typeName)")
            }
            try checkHomogeneous(v, key: key, path: path)
        }
    }
}
