// A GGUF model file (ggml docs/gguf.md, versions 2 and 3, little-endian), memory-mapped and fully
// validated at open: metadata, tensor infos, alignment, and every tensor's bytes inside the data section.

import ProbityTensor

/// Caps on what a GGUF file may declare. Each is far above any real model and keeps a hostile
/// file from making us allocate or recurse without bound.
public enum GGUFLimits {
    /// Bytes in one metadata string (chat templates are the longest real ones, tens of KiB).
    public static let maxStringLength = 16 << 20
    /// Bytes in a metadata key.
    public static let maxNameLength = 64 << 10
    /// Bytes in a tensor name: ggml keeps names in a 64-byte buffer with its NUL (GGML_MAX_NAME),
    /// so llama.cpp refuses a name of 64 bytes or more, and so do we.
    public static let maxTensorNameLength = 63
    /// Elements in one metadata array (vocabularies reach a few hundred thousand).
    public static let maxArrayLength = 1 << 24
    /// Arrays inside arrays: 1 means an array of scalars.
    public static let maxArrayDepth = 8
    /// Metadata key-value pairs.
    public static let maxMetadataCount = 1 << 20
    /// Tensors.
    public static let maxTensorCount = 1 << 20
    /// Dimensions of one tensor (ggml's GGML_MAX_DIMS).
    public static let maxDimensions = 4
    /// Alignment of the data section when `general.alignment` is absent.
    public static let defaultAlignment = 32
    /// Memory the decoded metadata and tensor infos may take, as `GGUFParser` accounts it (Swift's
    /// layouts: 16 bytes per string plus its heap storage past 15 bytes, each array element at its
    /// stride, the key and tensor tables at their load factor), charged before each allocation.
    /// Real files need a few MiB (Gemma 3's 262,144-token vocabulary: about 7); without this
    /// budget a file could hold 2^20 pairs of arrays of 2^24 elements each.
    public static let maxDecodedBytes = 64 << 20
}

/// Where one tensor lives in a GGUF file and what it holds.
public struct GGUFTensorInfo: Sendable, Equatable {
    public let name: String
    public let type: GGMLType
    /// ggml order: `shape[0]` is the contiguous (innermost) dimension.
    public let shape: [Int]
    /// Relative to the start of the data section.
    public let offset: Int
    public let byteCount: Int

    public init(name: String, type: GGMLType, shape: [Int], offset: Int, byteCount: Int) {
        self.name = name
        self.type = type
        self.shape = shape
        self.offset = offset
        self.byteCount = byteCount
    }

    public var elementCount: Int { shape.reduce(1, *) }
}

/// An open, validated GGUF file. Tensor data are views into the map, never copies.
public final class GGUFFile: @unchecked Sendable {
    // Immutable after init; `bytes` points into `owner` (a read-only map or a private copy).
    public let path: String
    public let version: UInt32
    public let alignment: Int
    /// Keys in file order.
    public let metadataKeys: [String]
    public let metadata: [String: GGUFValue]
    /// Tensors in file order.
    public let tensors: [GGUFTensorInfo]
    /// Byte offset of the data section from the start of the file.
    public let dataOffset: Int
    /// Size of the whole file in bytes.
    public var fileSize: Int { bytes.count }

    private let owner: AnyObject
    private let bytes: UnsafeRawBufferPointer
    private let tensorIndex: [String: Int]

    /// Maps the file at `path` and validates it.
    /// - Complexity: proportional to the metadata and tensor infos; tensor data are not read.
    public convenience init(path: String) throws {
        let map = try MappedFile(path: path)
        try self.init(owner: map, bytes: map.bytes, path: path)
    }

    /// Parses GGUF bytes held in memory (a private copy is kept); `name` appears in errors.
    public convenience init(bytes: [UInt8], name: String) throws {
        let copy = OwnedBytes(bytes)
        try self.init(owner: copy, bytes: copy.bytes, path: name)
    }

    private init(owner: AnyObject, bytes: UnsafeRawBufferPointer, path: String) throws {
        self.owner = owner
        self.bytes = bytes
        self.path = path
        var parser = GGUFParser(cursor: ByteCursor(bytes: bytes, path: path))
        let parsed = try parser.parse()
        version = parsed.version
        alignment = parsed.alignment
        metadataKeys = parsed.keys
        metadata = parsed.metadata
        tensors = parsed.tensors
        dataOffset = parsed.dataOffset
        var index: [String: Int] = [:]
        for (i, t) in parsed.tensors.enumerated() { index[t.name] = i }
        tensorIndex = index
    }

    public func tensor(named name: String) -> GGUFTensorInfo? {
        tensorIndex[name].map { tensors[$0] }
    }

    /// The tensor's bytes: a view into the map, valid while this `GGUFFile` lives.
    public func data(for tensor: GGUFTensorInfo) -> UnsafeRawBufferPointer {
        let start = dataOffset + tensor.offset
        precondition(tensor.offset >= 0 && tensor.byteCount >= 0 && start + tensor.byteCount <= bytes.count,
                     "tensor info from another file")
        return UnsafeRawBufferPointer(rebasing: bytes[start..<(start + tensor.byteCount)])
    }

    public func value(_ key: String) -> GGUFValue? { metadata[key] }
}

/// A private heap copy of bytes, freed with its owner.
final class OwnedBytes {
    let bytes: UnsafeRawBufferPointer
    private let storage: UnsafeMutableRawBufferPointer

    init(_ source: [UInt8]) {
        // 64-byte alignment, like a page-aligned map, so tensor views are aligned the same way.
        let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(source.count, 1), alignment: 64)
        source.withUnsafeBytes { storage.copyMemory(from: $0) }
        self.storage = storage
        bytes = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(storage)[0..<source.count])
    }

    deinit { storage.deallocate() }
}

/// One pass over the header, metadata and tensor infos, then the checks that need all of them.
private struct GGUFParser {
    var cursor: ByteCursor
    var path: String { cursor.path }

    struct Parsed {
        var version: UInt32
        var alignment: Int
        var keys: [String]
        var metadata: [String: GGUFValue]
        var tensors: [GGUFTensorInfo]
        var dataOffset: Int
    }

    /// Smallest encoding of one metadata pair (empty key, type id, one byte) and one tensor info
    /// (empty name, dimension count, one dimension, type, offset): counts are checked against these.
    static let minPairSize = 8 + 4 + 1
    static let minTensorInfoSize = 8 + 4 + 8 + 4 + 8

    /// What is left of `GGUFLimits.maxDecodedBytes`.
    var budget = GGUFLimits.maxDecodedBytes

    /// Takes `bytes` from the budget before they are allocated, or refuses the file.
    mutating func charge(_ bytes: Int, at offset: Int, _ what: @autoclosure () -> String) throws {
        guard bytes <= budget else {
            let asked = UInt64(GGUFLimits.maxDecodedBytes - budget) + UInt64(bytes)
            throw FormatError.limitExceeded(path: path, offset: offset,
                                            what: "memory for the decoded metadata and tensor infos (bytes, counting \(what()))",
                                            value: asked, limit: GGUFLimits.maxDecodedBytes)
        }
        budget -= bytes
    }

    /// The heap a Swift string of `length` UTF-8 bytes takes beyond its 16 inline bytes (which the
    /// array or table holding it is charged for): none up to 15 bytes, else an object of a 32-byte
    /// header, the bytes and a NUL, in 16-byte steps.
    static func stringCost(_ length: Int) -> Int { length > 15 ? 32 + (length + 16) / 16 * 16 : 0 }

    /// The next string's length, read ahead, to charge it before it is decoded.
    func peekStringCost() -> Int {
        var ahead = cursor
        // A length past the end or the cap costs nothing here: readGGUFString refuses it.
        guard let length = try? ahead.readUInt64("string length"), length <= UInt64(GGUFLimits.maxStringLength) else {
            return 0
        }
        return Self.stringCost(Int(length))
    }

    /// Reads a string after charging it (its length is checked against the file and the cap there).
    mutating func readString(_ what: @autoclosure () -> String, limit: Int) throws -> String {
        try charge(peekStringCost(), at: cursor.offset, what())
        return try cursor.readGGUFString(what(), limit: limit)
    }

    mutating func parse() throws -> Parsed {
        let magic = try cursor.readBytes(4, "magic")
        guard Array(magic) == Array("GGUF".utf8) else { throw FormatError.badMagic(path: path, found: Array(magic)) }
        let version = try cursor.readUInt32("version")
        // A big-endian writer puts the small version number in the high bytes.
        if version & 0xFFFF == 0, (1...3).contains(version.byteSwapped) { throw FormatError.bigEndian(path: path) }
        guard version == 2 || version == 3 else { throw FormatError.unsupportedVersion(path: path, version: version) }

        let tensorCountAt = cursor.offset
        let tensorCount = try cursor.readUInt64("tensor count")
        try checkCount(tensorCount, at: tensorCountAt, limit: GGUFLimits.maxTensorCount,
                       unitSize: Self.minTensorInfoSize, "tensor count")
        let pairCountAt = cursor.offset
        let pairCount = try cursor.readUInt64("metadata count")
        try checkCount(pairCount, at: pairCountAt, limit: GGUFLimits.maxMetadataCount,
                       unitSize: Self.minPairSize, "metadata count")

        // The key list, and the table at up to 3 buckets per pair (its load factor and power-of-2 sizes).
        try charge(Int(pairCount) * (16 + 3 * (16 + MemoryLayout<GGUFValue>.stride)), at: pairCountAt, "metadata count")
        var keys: [String] = []
        var metadata: [String: GGUFValue] = [:]
        keys.reserveCapacity(Int(pairCount))
        metadata.reserveCapacity(Int(pairCount))
        for _ in 0..<Int(pairCount) {
            let keyAt = cursor.offset
            let key = try readString("metadata key", limit: GGUFLimits.maxNameLength)
            guard metadata[key] == nil else { throw FormatError.duplicateKey(path: path, offset: keyAt, key: key) }
            let typeAt = cursor.offset
            let typeID = try cursor.readUInt32("value type of '\(key)'")
            let value = try readValue(typeID: typeID, typeAt: typeAt, key: key, depth: 0)
            keys.append(key)
            metadata[key] = value
        }

        var alignment = GGUFLimits.defaultAlignment
        if let value = metadata[GGUFKey.alignment] {
            // llama.cpp reads the alignment as a uint32 and refuses any other type.
            guard case .uint32(let a32) = value, a32 > 0, a32 & (a32 - 1) == 0 else {
                throw FormatError.badAlignment(path: path, found: "\(value.summary()) (\(value.typeName))")
            }
            alignment = Int(a32)
        }

        // Each info, its raw offset, and a name in this parser's set and in the file's index (both
        // at up to 3 buckets per name).
        try charge(Int(tensorCount) * (MemoryLayout<GGUFTensorInfo>.stride + 8 + 3 * 16 + 3 * (16 + 8)),
                   at: tensorCountAt, "tensor count")
        var tensors: [GGUFTensorInfo] = []
        var rawOffsets: [UInt64] = []
        var seen = Set<String>()
        tensors.reserveCapacity(Int(tensorCount))
        for _ in 0..<Int(tensorCount) {
            let infoAt = cursor.offset
            let name = try readString("tensor name", limit: GGUFLimits.maxTensorNameLength)
            guard seen.insert(name).inserted else {
                throw FormatError.duplicateTensor(path: path, offset: infoAt, name: name)
            }
            let dimsAt = cursor.offset
            let dimCount = try cursor.readUInt32("dimension count of '\(name)'")
            guard dimCount >= 1, dimCount <= GGUFLimits.maxDimensions else {
                throw FormatError.badDimensionCount(path: path, offset: dimsAt, tensor: name, count: dimCount)
            }
            try charge(32 + 8 * Int(dimCount), at: dimsAt, "the shape of '\(name)'")
            var shape: [Int] = []
            shape.reserveCapacity(Int(dimCount))
            var elements = 1
            for i in 0..<Int(dimCount) {
                let dimAt = cursor.offset
                let d = try cursor.readUInt64("dimension \(i) of '\(name)'")
                guard d >= 1, let n = Int(exactly: d) else {
                    throw FormatError.badDimension(path: path, offset: dimAt, tensor: name, index: i, value: d)
                }
                shape.append(n)
                let (product, overflow) = elements.multipliedReportingOverflow(by: n)
                guard !overflow else { throw FormatError.elementCountOverflow(path: path, tensor: name, shape: shape) }
                elements = product
            }
            let typeAt = cursor.offset
            let typeID = try cursor.readUInt32("type of '\(name)'")
            guard let type = GGMLType(rawValue: typeID) else {
                throw FormatError.unknownTensorType(path: path, offset: typeAt, tensor: name, typeID: typeID)
            }
            // ggml quantizes along rows, so each row (the innermost dimension) holds whole blocks.
            guard shape[0] % type.blockSize == 0 else {
                throw FormatError.partialBlock(path: path, tensor: name, type: type.name, shape: shape,
                                               blockSize: type.blockSize)
            }
            guard let byteCount = type.byteCount(elements: elements) else {
                throw FormatError.elementCountOverflow(path: path, tensor: name, shape: shape)
            }
            let offset = try cursor.readUInt64("data offset of '\(name)'")
            rawOffsets.append(offset)
            tensors.append(GGUFTensorInfo(name: name, type: type, shape: shape,
                                          offset: Int(truncatingIfNeeded: offset), byteCount: byteCount))
        }

        // The data section starts at the next multiple of the alignment; a file without
        // tensors may end right after its infos.
        var dataOffset = cursor.offset
        if !tensors.isEmpty {
            try cursor.align(to: alignment, "padding before the tensor data")
            dataOffset = cursor.offset
        }
        let available = cursor.bytes.count - dataOffset
        // As llama.cpp (gguf.cpp) lays the data section out: tensors back to back in the order of
        // their infos, each padded to the alignment, so a tensor starts exactly where the padded
        // bytes of the one before end. Gaps (a shape smaller than the room it was given), overlaps
        // and reordering are all refused; only the last tensor's padding may be missing.
        var expected: UInt64 = 0
        for (i, t) in tensors.enumerated() {
            let raw = rawOffsets[i]
            guard raw % UInt64(alignment) == 0 else {
                throw FormatError.misalignedOffset(path: path, tensor: t.name, offset: raw, alignment: alignment)
            }
            guard raw == expected else {
                throw FormatError.tensorOffsetMismatch(path: path, tensor: t.name, expected: expected, found: raw,
                                                       after: i > 0 ? tensors[i - 1].name : nil, alignment: alignment)
            }
            guard raw <= UInt64(available), t.byteCount <= available - Int(raw) else {
                throw FormatError.tensorOutOfBounds(path: path, tensor: t.name, start: raw, count: t.byteCount,
                                                    available: available)
            }
            // Cannot overflow: the tensor ends inside the file.
            let end = Int(raw) + t.byteCount
            expected = UInt64((end + alignment - 1) / alignment * alignment)
        }
        return Parsed(version: version, alignment: alignment, keys: keys, metadata: metadata,
                      tensors: tensors, dataOffset: dataOffset)
    }

    func checkCount(_ count: UInt64, at: Int, limit: Int, unitSize: Int, _ what: String) throws {
        try cursor.requireLength(count, unitSize: unitSize, at: at, what)
        guard count <= UInt64(limit) else {
            throw FormatError.limitExceeded(path: path, offset: at, what: what, value: count, limit: limit)
        }
    }

    /// Reads one value of type `typeID`; `depth` counts the arrays around it.
    mutating func readValue(typeID: UInt32, typeAt: Int, key: String, depth: Int) throws -> GGUFValue {
        switch typeID {
        case 0: return .uint8(try cursor.readUInt8("value of '\(key)'"))
        case 1: return .int8(try cursor.readInt8("value of '\(key)'"))
        case 2: return .uint16(try cursor.readUInt16("value of '\(key)'"))
        case 3: return .int16(try cursor.readInt16("value of '\(key)'"))
        case 4: return .uint32(try cursor.readUInt32("value of '\(key)'"))
        case 5: return .int32(try cursor.readInt32("value of '\(key)'"))
        case 6: return .float32(try cursor.readFloat32("value of '\(key)'"))
        case 7:
            let at = cursor.offset
            let b = try cursor.readUInt8("value of '\(key)'")
            guard b <= 1 else { throw FormatError.invalidBool(path: path, offset: at, key: key, byte: b) }
            return .bool(b == 1)
        case 8: return .string(try readString("'\(key)' string", limit: GGUFLimits.maxStringLength))
        case 9:
            guard depth < GGUFLimits.maxArrayDepth else {
                throw FormatError.limitExceeded(path: path, offset: typeAt, what: "array nesting depth of '\(key)'",
                                                value: UInt64(depth + 1), limit: GGUFLimits.maxArrayDepth)
            }
            let elementTypeAt = cursor.offset
            let elementType = try cursor.readUInt32("array element type of '\(key)'")
            guard let unit = Self.minEncodedSize(typeID: elementType) else {
                throw FormatError.unknownValueType(path: path, offset: elementTypeAt, key: key, typeID: elementType)
            }
            let countAt = cursor.offset
            let count = try cursor.readUInt64("array length of '\(key)'")
            try checkCount(count, at: countAt, limit: GGUFLimits.maxArrayLength, unitSize: unit,
                           "array length of '\(key)'")
            return .array(try readElements(Int(count), typeID: elementType, typeAt: elementTypeAt, countAt: countAt,
                                           key: key, depth: depth + 1))
        case 10: return .uint64(try cursor.readUInt64("value of '\(key)'"))
        case 11: return .int64(try cursor.readInt64("value of '\(key)'"))
        case 12: return .float64(try cursor.readFloat64("value of '\(key)'"))
        default:
            throw FormatError.unknownValueType(path: path, offset: typeAt, key: key, typeID: typeID)
        }
    }

    /// Reads `n` elements of one type into one typed array, charging the array before it is made.
    mutating func readElements(_ n: Int, typeID: UInt32, typeAt: Int, countAt: Int, key: String,
                               depth: Int) throws -> GGUFArray {
        let what = "value of '\(key)'"
        // A scalar element takes in memory what it takes in the file; a string its 16 inline bytes
        // (its heap is charged as it is read); a nested array one `GGUFValue`.
        let elementSize = switch typeID {
        case 8: MemoryLayout<String>.stride
        case 9: MemoryLayout<GGUFValue>.stride
        default: Self.minEncodedSize(typeID: typeID) ?? MemoryLayout<GGUFValue>.stride
        }
        try charge(32 + n * elementSize, at: countAt, "array '\(key)'")
        switch typeID {
        case 0: return GGUFArray(storage: .uint8(Array(try cursor.readBytes(n, what))))
        case 1: return GGUFArray(storage: .int8(try read(n) { try $0.readInt8(what) }))
        case 2: return GGUFArray(storage: .uint16(try read(n) { try $0.readUInt16(what) }))
        case 3: return GGUFArray(storage: .int16(try read(n) { try $0.readInt16(what) }))
        case 4: return GGUFArray(storage: .uint32(try read(n) { try $0.readUInt32(what) }))
        case 5: return GGUFArray(storage: .int32(try read(n) { try $0.readInt32(what) }))
        case 6: return GGUFArray(storage: .float32(try read(n) { try $0.readFloat32(what) }))
        case 7:
            let path = self.path
            return GGUFArray(storage: .bool(try read(n) { cursor in
                let at = cursor.offset
                let b = try cursor.readUInt8(what)
                guard b <= 1 else { throw FormatError.invalidBool(path: path, offset: at, key: key, byte: b) }
                return b == 1
            }))
        case 10: return GGUFArray(storage: .uint64(try read(n) { try $0.readUInt64(what) }))
        case 11: return GGUFArray(storage: .int64(try read(n) { try $0.readInt64(what) }))
        case 12: return GGUFArray(storage: .float64(try read(n) { try $0.readFloat64(what) }))
        case 8:
            var strings: [String] = []
            strings.reserveCapacity(n)
            for _ in 0..<n { strings.append(try readString("'\(key)' string", limit: GGUFLimits.maxStringLength)) }
            return GGUFArray(storage: .string(strings))
        default:
            var values: [GGUFValue] = []
            values.reserveCapacity(n)
            for _ in 0..<n { values.append(try readValue(typeID: typeID, typeAt: typeAt, key: key, depth: depth)) }
            return GGUFArray(storage: .values(values))
        }
    }

    /// `n` values read one after another by `element`.
    private mutating func read<T>(_ n: Int, _ element: (inout ByteCursor) throws -> T) rethrows -> [T] {
        var out: [T] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try element(&cursor)) }
        return out
    }

    /// The fewest bytes one value of this type can occupy; nil for an unknown type id.
    static func minEncodedSize(typeID: UInt32) -> Int? {
        switch typeID {
        case 0, 1, 7: return 1
        case 2, 3: return 2
        case 4, 5, 6: return 4
        case 10, 11, 12: return 8
        case 8: return 8          // the length, for an empty string
        case 9: return 4 + 8      // element type and length, for an empty array
        default: return nil
        }
    }
}
