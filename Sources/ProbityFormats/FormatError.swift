// The one error enum of ProbityFormats: every way a GGUF, safetensors or npy file can be wrong.
// Each case carries the file, the byte offset (where one applies) and what was expected vs found.

/// A malformed or unsupported model file. `description` is the one message a user sees.
public enum FormatError: Error, CustomStringConvertible, Equatable {
    // Reading past what the file holds.
    /// A fixed-size read of `needed` bytes at `offset` found only `left`.
    case truncated(path: String, offset: Int, what: String, needed: Int, left: Int)
    /// A length or count read from the file promises more than the bytes left after it; each of
    /// the `length` items takes at least `unitSize` bytes.
    case lengthPastEnd(path: String, offset: Int, what: String, length: UInt64, left: Int, unitSize: Int = 1)
    /// A length, count or depth above one of the documented caps (see `GGUFLimits`).
    case limitExceeded(path: String, offset: Int, what: String, value: UInt64, limit: Int)

    // GGUF header and metadata.
    case badMagic(path: String, found: [UInt8])
    case unsupportedVersion(path: String, version: UInt32)
    case bigEndian(path: String)
    case unknownValueType(path: String, offset: Int, key: String, typeID: UInt32)
    case invalidBool(path: String, offset: Int, key: String, byte: UInt8)
    case invalidUTF8(path: String, offset: Int, what: String)
    case duplicateKey(path: String, offset: Int, key: String)
    case badAlignment(path: String, found: String)
    /// A metadata key the caller needs is absent.
    case missingKey(path: String, key: String)
    /// A metadata key holds the wrong type or an out-of-range value.
    case wrongValueType(path: String, key: String, expected: String, found: String)

    // GGUF tensor infos and data.
    case duplicateTensor(path: String, offset: Int, name: String)
    case unknownTensorType(path: String, offset: Int, tensor: String, typeID: UInt32)
    case badDimensionCount(path: String, offset: Int, tensor: String, count: UInt32)
    case badDimension(path: String, offset: Int, tensor: String, index: Int, value: UInt64)
    case elementCountOverflow(path: String, tensor: String, shape: [Int])
    /// The innermost dimension is not a whole number of the type's blocks.
    case partialBlock(path: String, tensor: String, type: String, shape: [Int], blockSize: Int)
    case misalignedOffset(path: String, tensor: String, offset: UInt64, alignment: Int)
    /// Tensor bytes `[start, start+count)` (relative to the data section) run past its `available` bytes.
    case tensorOutOfBounds(path: String, tensor: String, start: UInt64, count: Int, available: Int)
    case overlappingTensors(path: String, first: String, second: String, firstEnd: Int, secondStart: Int)
    /// A safetensors tensor starts after the end of the one before it in offset order (`after`),
    /// or, for the first, after data offset 0: the bytes between belong to no tensor.
    case tensorGap(path: String, tensor: String, expected: Int, found: Int, after: String?)
    /// The safetensors tensors cover the first `covered` bytes of a data section of `size` bytes.
    case dataSizeMismatch(path: String, covered: Int, size: Int)
    /// A GGUF tensor does not start where the padded bytes of the tensor before it (`after`, in the
    /// order of the infos) end, or, for the first tensor, at the start of the data section.
    case tensorOffsetMismatch(path: String, tensor: String, expected: UInt64, found: UInt64, after: String?, alignment: Int)
    /// A tensor the caller needs is absent.
    case missingTensor(path: String, name: String)
    /// A tensor's shape differs from what the architecture needs (both in the file's order).
    case tensorShapeMismatch(path: String, name: String, expected: [Int], found: [Int])
    /// A tensor's element type is not one the caller supports.
    case tensorTypeMismatch(path: String, name: String, expected: [String], found: String)

    // safetensors and npy.
    case headerTooLarge(path: String, length: UInt64, limit: Int)
    /// A file read whole holds more than its kind's cap (`FileSizeLimits`); `size` is nil when the
    /// file is not a regular file (a device or pipe) and the read went past the cap.
    case fileTooLarge(path: String, what: String, size: Int64?, limit: Int)
    /// A header entry has the wrong shape: `at` names the entry (tensor name or field).
    case badHeaderField(path: String, at: String, expected: String, found: String)
    case unknownDType(path: String, tensor: String, dtype: String)
    /// A tensor's byte size differs from what its dtype and shape need.
    case sizeMismatch(path: String, tensor: String, expected: Int, found: Int)
    /// A request a file cannot serve, e.g. converting an integer tensor to floats.
    case unsupported(path: String, what: String)
    case cannotWrite(path: String, reason: String)

    // Adapters.
    /// A LoRA adapter (`path`) that is malformed or does not fit its base model: `tensor` names the
    /// adapter tensor at fault (nil for the file as a whole).
    case badAdapter(path: String, tensor: String?, expected: String, found: String)

    public var description: String {
        switch self {
        case let .truncated(path, offset, what, needed, left):
            return "\(path): offset \(offset): \(what) needs \(needed) bytes but only \(left) are left in the file (truncated?)"
        case let .lengthPastEnd(path, offset, what, length, left, unitSize):
            guard unitSize > 1 else {
                return "\(path): offset \(offset): \(what) \(length) exceeds the \(left) bytes left in the file"
            }
            let (bytes, overflow) = length.multipliedReportingOverflow(by: UInt64(unitSize))
            let needed = overflow ? "\(length) × \(unitSize)" : "\(bytes)"
            return "\(path): offset \(offset): \(what) \(length) needs at least \(needed) bytes (\(unitSize) each), but only \(left) are left in the file"
        case let .limitExceeded(path, offset, what, value, limit):
            return "\(path): offset \(offset): \(what) \(value) exceeds the limit of \(limit)"
        case let .badMagic(path, found):
            let shown = found.map { b in (32..<127).contains(b) ? String(UnicodeScalar(b)) : "\\x" + hex(b) }
            return "\(path): offset 0: expected the GGUF magic \"GGUF\", found \"\(shown.joined())\" (not a GGUF file)"
        case let .unsupportedVersion(path, version):
            let hint = version == 1 ? " (GGUF v1 used 32-bit lengths; re-convert the model with a current llama.cpp)" : ""
            return "\(path): offset 4: unsupported GGUF version \(version), expected 2 or 3\(hint)"
        case let .bigEndian(path):
            return "\(path): offset 4: big-endian GGUF files are not supported, expected little-endian"
        case let .unknownValueType(path, offset, key, typeID):
            return "\(path): offset \(offset): metadata '\(key)': unknown value type id \(typeID), expected 0...12"
        case let .invalidBool(path, offset, key, byte):
            return "\(path): offset \(offset): metadata '\(key)': bool byte is \(byte), expected 0 or 1"
        case let .invalidUTF8(path, offset, what):
            return "\(path): offset \(offset): \(what) is not valid UTF-8"
        case let .duplicateKey(path, offset, key):
            return "\(path): offset \(offset): duplicate metadata key '\(key)'"
        case let .badAlignment(path, found):
            return "\(path): general.alignment: expected a uint32 power of two greater than 0, found \(found)"
        case let .missingKey(path, key):
            return "\(path): missing metadata key '\(key)'"
        case let .wrongValueType(path, key, expected, found):
            return "\(path): metadata '\(key)': expected \(expected), found \(found)"
        case let .duplicateTensor(path, offset, name):
            return "\(path): offset \(offset): duplicate tensor name '\(name)'"
        case let .unknownTensorType(path, offset, tensor, typeID):
            return "\(path): offset \(offset): tensor '\(tensor)': unknown ggml type id \(typeID)"
        case let .badDimensionCount(path, offset, tensor, count):
            return "\(path): offset \(offset): tensor '\(tensor)': \(count) dimensions, expected 1...\(GGUFLimits.maxDimensions)"
        case let .badDimension(path, offset, tensor, index, value):
            return "\(path): offset \(offset): tensor '\(tensor)': dimension \(index) is \(value), expected 1...\(Int.max)"
        case let .elementCountOverflow(path, tensor, shape):
            return "\(path): tensor '\(tensor)': element count of shape \(shape) overflows"
        case let .partialBlock(path, tensor, type, shape, blockSize):
            return "\(path): tensor '\(tensor)': \(type) stores blocks of \(blockSize) elements, but the innermost dimension of shape \(shape) is not a multiple of \(blockSize)"
        case let .misalignedOffset(path, tensor, offset, alignment):
            return "\(path): tensor '\(tensor)': data offset \(offset) is not a multiple of the alignment \(alignment)"
        case let .tensorOutOfBounds(path, tensor, start, count, available):
            return "\(path): tensor '\(tensor)': its \(count) bytes at data offset \(start) run past the \(available) bytes of the data section"
        case let .overlappingTensors(path, first, second, firstEnd, secondStart):
            return "\(path): tensor '\(second)' starts at data offset \(secondStart), inside tensor '\(first)' (which ends at \(firstEnd))"
        case let .tensorGap(path, tensor, expected, found, after):
            let rule = "safetensors tensors tile the data section, without gaps"
            guard let after else {
                return "\(path): tensor '\(tensor)': data offsets start at \(found), expected \(expected): the first tensor starts the data section (\(rule))"
            }
            return "\(path): tensor '\(tensor)': data offsets start at \(found), expected \(expected), where tensor '\(after)' ends (\(rule))"
        case let .dataSizeMismatch(path, covered, size):
            return "\(path): the tensors cover \(covered) bytes of data, but the data section holds \(size) bytes (expected them to cover it exactly)"
        case let .tensorOffsetMismatch(path, tensor, expected, found, after, alignment):
            let rule = "tensors are stored back to back in the order of their infos, each padded to the alignment \(alignment)"
            guard let after else {
                return "\(path): tensor '\(tensor)': data offset \(found), expected \(expected): the first tensor starts the data section (\(rule))"
            }
            return "\(path): tensor '\(tensor)': data offset \(found), expected \(expected), where tensor '\(after)' ends (\(rule))"
        case let .missingTensor(path, name):
            return "\(path): missing tensor '\(name)'"
        case let .tensorShapeMismatch(path, name, expected, found):
            return "\(path): tensor \(name): expected shape \(expected), found \(found)"
        case let .tensorTypeMismatch(path, name, expected, found):
            return "\(path): tensor \(name): type \(found) is not supported here (expected \(expected.joined(separator: " or ")))"
        case let .fileTooLarge(path, what, size, limit):
            let found = size.map { "\($0) bytes" } ?? "more (not a regular file: read until past the cap)"
            return "\(path): \(what) too large: expected at most \(limit) bytes (\(limit >> 20) MiB), found \(found)"
        case let .headerTooLarge(path, length, limit):
            return "\(path): offset 0: header length \(length) exceeds the limit of \(limit) bytes"
        case let .badHeaderField(path, at, expected, found):
            return "\(path): header '\(at)': expected \(expected), found \(found)"
        case let .unknownDType(path, tensor, dtype):
            return "\(path): tensor '\(tensor)': unknown dtype '\(dtype)'"
        case let .sizeMismatch(path, tensor, expected, found):
            return "\(path): tensor '\(tensor)': dtype and shape need \(expected) bytes, found \(found)"
        case let .unsupported(path, what):
            return "\(path): \(what)"
        case let .cannotWrite(path, reason):
            return "\(path): cannot write: \(reason)"
        case let .badAdapter(path, tensor, expected, found):
            let at = tensor.map { "tensor '\($0)': " } ?? ""
            return "\(path): LoRA adapter: \(at)expected \(expected), found \(found)"
        }
    }
}

private func hex(_ b: UInt8) -> String {
    let digits = Array("0123456789abcdef")
    return String([digits[Int(b >> 4)], digits[Int(b & 15)]])
}
