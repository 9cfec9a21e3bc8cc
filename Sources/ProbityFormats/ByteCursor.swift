// A bounded little-endian reader over untrusted bytes: every read checks what is left first,
// and every length read from the file is checked against the bytes left before anything is allocated.

/// A read position in a byte buffer. Reads throw `FormatError` instead of running past the end.
public struct ByteCursor {
    /// The file name used in error messages.
    public let path: String
    public let bytes: UnsafeRawBufferPointer
    /// Offset of the next byte to read, from the start of `bytes`.
    public private(set) var offset: Int

    public init(bytes: UnsafeRawBufferPointer, path: String, offset: Int = 0) {
        precondition(offset >= 0 && offset <= bytes.count, "cursor offset outside its buffer")
        self.bytes = bytes
        self.path = path
        self.offset = offset
    }

    /// Bytes between the read position and the end.
    public var remaining: Int { bytes.count - offset }

    /// Throws unless `count` bytes are left; `what` names the field for the message.
    public func require(_ count: Int, _ what: @autoclosure () -> String) throws {
        guard count >= 0, count <= remaining else {
            throw FormatError.truncated(path: path, offset: offset, what: what(), needed: count, left: remaining)
        }
    }

    /// Throws unless a length or count read from the file (at `at`) fits the bytes left,
    /// given that each unit occupies at least `unitSize` bytes.
    public func requireLength(_ length: UInt64, unitSize: Int = 1, at: Int, _ what: @autoclosure () -> String) throws {
        let (total, overflow) = length.multipliedReportingOverflow(by: UInt64(unitSize))
        guard !overflow, total <= UInt64(max(0, remaining)) else {
            throw FormatError.lengthPastEnd(path: path, offset: at, what: what(), length: length, left: remaining, unitSize: unitSize)
        }
    }

    public mutating func skip(_ count: Int, _ what: @autoclosure () -> String) throws {
        try require(count, what())
        offset += count
    }

    /// Moves to the next multiple of `alignment` (a power of two), if the buffer reaches it.
    public mutating func align(to alignment: Int, _ what: @autoclosure () -> String) throws {
        let padding = (alignment - offset % alignment) % alignment
        try skip(padding, what())
    }

    public mutating func readUInt8(_ what: @autoclosure () -> String) throws -> UInt8 {
        try require(1, what())
        defer { offset += 1 }
        return bytes[offset]
    }

    public mutating func readUInt16(_ what: @autoclosure () -> String) throws -> UInt16 { try readInteger(what()) }
    public mutating func readUInt32(_ what: @autoclosure () -> String) throws -> UInt32 { try readInteger(what()) }
    public mutating func readUInt64(_ what: @autoclosure () -> String) throws -> UInt64 { try readInteger(what()) }
    public mutating func readInt8(_ what: @autoclosure () -> String) throws -> Int8 { try readInteger(what()) }
    public mutating func readInt16(_ what: @autoclosure () -> String) throws -> Int16 { try readInteger(what()) }
    public mutating func readInt32(_ what: @autoclosure () -> String) throws -> Int32 { try readInteger(what()) }
    public mutating func readInt64(_ what: @autoclosure () -> String) throws -> Int64 { try readInteger(what()) }

    public mutating func readFloat32(_ what: @autoclosure () -> String) throws -> Float {
        Float(bitPattern: try readInteger(what()) as UInt32)
    }

    public mutating func readFloat64(_ what: @autoclosure () -> String) throws -> Double {
        Double(bitPattern: try readInteger(what()) as UInt64)
    }

    /// A view of the next `count` bytes (no copy), valid while `bytes` is.
    public mutating func readBytes(_ count: Int, _ what: @autoclosure () -> String) throws -> UnsafeRawBufferPointer {
        try require(count, what())
        defer { offset += count }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
    }

    /// A GGUF string: a u64 byte length, then that many UTF-8 bytes (no terminator).
    /// Lengths past the end, then lengths above `limit`, are rejected before reading.
    public mutating func readGGUFString(_ what: @autoclosure () -> String, limit: Int) throws -> String {
        let start = offset
        let length = try readUInt64("\(what()) length")
        try requireLength(length, at: start, "\(what()) length")
        guard length <= UInt64(limit) else {
            throw FormatError.limitExceeded(path: path, offset: start, what: "\(what()) length", value: length, limit: limit)
        }
        let body = try readBytes(Int(length), what())
        guard let s = String(validating: body, as: UTF8.self) else {
            throw FormatError.invalidUTF8(path: path, offset: start + 8, what: what())
        }
        return s
    }

    private mutating func readInteger<T: FixedWidthInteger>(_ what: @autoclosure () -> String) throws -> T {
        let size = MemoryLayout<T>.size
        try require(size, what())
        defer { offset += size }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }
}
