// numpy `.npy` arrays (numpy's NEP 1 format description): writes little-endian float32 in C order
// as version 1.0; reads little-endian float32 and float64 arrays of versions 1.0, 2.0 and 3.0.

import Foundation

/// An array read from a `.npy` file. Values are kept as `Double`, which holds float32 and float64 exactly.
public struct NPYArray: Sendable, Equatable {
    public enum DType: String, Sendable { case float32 = "<f4", float64 = "<f8" }

    public let dtype: DType
    /// C order: the last dimension is contiguous. `[]` is a scalar.
    public let shape: [Int]
    public let values: [Double]

    public init(dtype: DType, shape: [Int], values: [Double]) {
        self.dtype = dtype
        self.shape = shape
        self.values = values
    }

    public var floats: [Float] { values.map(Float.init) }
}

/// Reading and writing `.npy` files.
public enum NPY {
    static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)
    /// numpy pads the header so the data starts on a multiple of this.
    static let headerAlignment = 64
    /// Largest header accepted; numpy's own reader refuses headers above 10,000 bytes by default.
    public static let maxHeaderLength = 1 << 16

    /// The `.npy` bytes of a float32 array in C order (format version 1.0).
    public static func encode(_ values: [Float], shape: [Int]) throws -> [UInt8] {
        let elements = shape.reduce(1) { $0.multipliedReportingOverflow(by: $1).overflow ? -1 : $0 * $1 }
        guard shape.allSatisfy({ $0 >= 0 }), elements == values.count else {
            throw FormatError.sizeMismatch(path: "npy", tensor: "array of shape \(shape)", expected: max(elements, 0) * 4,
                                           found: values.count * 4)
        }
        let dims = shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? "," : "")
        var header = Array("{'descr': '<f4', 'fortran_order': False, 'shape': (\(dims)), }".utf8)
        let unpadded = magic.count + 2 + 2 + header.count + 1
        header.append(contentsOf: repeatElement(UInt8(ascii: " "), count: (headerAlignment - unpadded % headerAlignment) % headerAlignment))
        header.append(UInt8(ascii: "\n"))
        var out = magic + [1, 0]
        withUnsafeBytes(of: UInt16(header.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(contentsOf: header)
        out.reserveCapacity(out.count + values.count * 4)
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
        return out
    }

    public static func write(_ values: [Float], shape: [Int], to path: String) throws {
        let bytes = try encode(values, shape: shape)
        do {
            try Data(bytes).write(to: URL(fileURLWithPath: path), options: .atomic)
        } catch {
            throw FormatError.cannotWrite(path: path, reason: error.localizedDescription)
        }
    }

    public static func read(path: String) throws -> NPYArray {
        let map = try MappedFile(path: path)
        return try decode(map.bytes, name: path)
    }

    public static func decode(bytes: [UInt8], name: String) throws -> NPYArray {
        try bytes.withUnsafeBytes { try decode($0, name: name) }
    }

    static func decode(_ bytes: UnsafeRawBufferPointer, name: String) throws -> NPYArray {
        var cursor = ByteCursor(bytes: bytes, path: name)
        let found = Array(try cursor.readBytes(6, "npy magic"))
        guard found == magic else {
            throw FormatError.badHeaderField(path: name, at: "magic", expected: "\\x93NUMPY (a .npy file)",
                                             found: String(decoding: found.map { (32..<127).contains($0) ? $0 : UInt8(ascii: "?") }, as: UTF8.self))
        }
        let major = try cursor.readUInt8("npy major version")
        let minor = try cursor.readUInt8("npy minor version")
        let lengthAt = cursor.offset
        let headerLength: UInt64
        switch (major, minor) {
        case (1, 0): headerLength = UInt64(try cursor.readUInt16("npy header length"))
        case (2, 0), (3, 0): headerLength = UInt64(try cursor.readUInt32("npy header length"))
        default:
            throw FormatError.badHeaderField(path: name, at: "version", expected: "1.0, 2.0 or 3.0", found: "\(major).\(minor)")
        }
        try cursor.requireLength(headerLength, at: lengthAt, "npy header length")
        guard headerLength <= UInt64(maxHeaderLength) else {
            throw FormatError.limitExceeded(path: name, offset: lengthAt, what: "npy header length", value: headerLength, limit: maxHeaderLength)
        }
        let headerBytes = try cursor.readBytes(Int(headerLength), "npy header")
        guard let text = String(validating: headerBytes, as: UTF8.self) else {
            throw FormatError.invalidUTF8(path: name, offset: lengthAt, what: "npy header")
        }
        let header = try NPYHeader.parse(text, path: name)
        guard !header.fortranOrder else {
            throw FormatError.unsupported(path: name, what: "Fortran-ordered arrays are not supported (expected C order)")
        }
        guard let dtype = NPYArray.DType(rawValue: header.descr) else {
            throw FormatError.unknownDType(path: name, tensor: "array", dtype: "\(header.descr) (expected <f4 or <f8)")
        }
        var elements = 1
        for d in header.shape {
            let (p, overflow) = elements.multipliedReportingOverflow(by: d)
            guard !overflow else { throw FormatError.elementCountOverflow(path: name, tensor: "array", shape: header.shape) }
            elements = p
        }
        let size = dtype == .float32 ? 4 : 8
        let (needed, overflow) = elements.multipliedReportingOverflow(by: size)
        guard !overflow, needed == cursor.remaining else {
            throw FormatError.sizeMismatch(path: name, tensor: "array of shape \(header.shape)", expected: overflow ? Int.max : needed,
                                           found: cursor.remaining)
        }
        let data = try cursor.readBytes(needed, "npy data")
        let values: [Double] = dtype == .float32
            ? (0..<elements).map { Double(Float(bitPattern: UInt32(littleEndian: data.loadUnaligned(fromByteOffset: 4 * $0, as: UInt32.self)))) }
            : (0..<elements).map { Double(bitPattern: UInt64(littleEndian: data.loadUnaligned(fromByteOffset: 8 * $0, as: UInt64.self))) }
        return NPYArray(dtype: dtype, shape: header.shape, values: values)
    }
}

/// The header: a Python dict literal with `descr`, `fortran_order` and `shape`.
struct NPYHeader {
    var descr: String
    var fortranOrder: Bool
    var shape: [Int]

    static func parse(_ text: String, path: String) throws -> NPYHeader {
        var p = LiteralScanner(chars: Array(text.unicodeScalars))
        let bad = { (why: String) in
            FormatError.badHeaderField(path: path, at: "header", expected: "a dict with 'descr', 'fortran_order' and 'shape' (\(why))",
                                       found: String(text.prefix(120)).trimmingCharacters(in: .whitespacesAndNewlines))
        }
        var descr: String?, fortran: Bool?, shape: [Int]?
        guard p.take("{") else { throw bad("no opening brace") }
        while !p.take("}") {
            guard let key = p.string() else { throw bad("expected a quoted key") }
            guard p.take(":") else { throw bad("expected ':' after '\(key)'") }
            switch key {
            case "descr":
                guard let d = p.string() else { throw bad("descr must be a string") }
                descr = d
            case "fortran_order":
                if p.word("True") { fortran = true } else if p.word("False") { fortran = false } else {
                    throw bad("fortran_order must be True or False")
                }
            case "shape":
                guard let s = p.tuple() else { throw bad("shape must be a tuple of non-negative integers") }
                shape = s
            default:
                throw bad("unexpected key '\(key)'")
            }
            if !p.take(",") {
                guard p.take("}") else { throw bad("expected ',' or '}'") }
                break
            }
        }
        guard p.atEnd else { throw bad("text after the closing brace") }
        guard let descr, let fortran, let shape else { throw bad("a key is missing") }
        return NPYHeader(descr: descr, fortranOrder: fortran, shape: shape)
    }

    /// A tiny scanner for the header's subset of Python literals; whitespace between tokens is skipped.
    struct LiteralScanner {
        let chars: [Unicode.Scalar]
        var i = 0

        var atEnd: Bool { mutating get { skipSpace(); return i == chars.count } }

        mutating func skipSpace() {
            while i < chars.count, chars[i].properties.isWhitespace { i += 1 }
        }

        mutating func take(_ c: Unicode.Scalar) -> Bool {
            skipSpace()
            guard i < chars.count, chars[i] == c else { return false }
            i += 1
            return true
        }

        mutating func word(_ w: String) -> Bool {
            skipSpace()
            let scalars = Array(w.unicodeScalars)
            guard i + scalars.count <= chars.count, Array(chars[i..<(i + scalars.count)]) == scalars else { return false }
            i += scalars.count
            return true
        }

        mutating func string() -> String? {
            skipSpace()
            guard i < chars.count, chars[i] == "'" || chars[i] == "\"" else { return nil }
            let quote = chars[i]
            var j = i + 1
            var s = String.UnicodeScalarView()
            while j < chars.count, chars[j] != quote {
                s.append(chars[j])
                j += 1
            }
            guard j < chars.count else { return nil }
            i = j + 1
            return String(s)
        }

        mutating func integer() -> Int? {
            skipSpace()
            var value = 0
            var digits = 0
            while i < chars.count, ("0"..."9").contains(chars[i]) {
                let (m, o1) = value.multipliedReportingOverflow(by: 10)
                let (a, o2) = m.addingReportingOverflow(Int(chars[i].value - 48))
                guard !o1, !o2 else { return nil }
                value = a
                digits += 1
                i += 1
            }
            // numpy 1.x on some platforms wrote `3L`.
            if digits > 0, i < chars.count, chars[i] == "L" { i += 1 }
            return digits > 0 ? value : nil
        }

        mutating func tuple() -> [Int]? {
            guard take("(") else { return nil }
            var out: [Int] = []
            while !take(")") {
                guard out.count < 64, let n = integer() else { return nil }
                out.append(n)
                if !take(",") {
                    guard take(")") else { return nil }
                    break
                }
            }
            return out
        }
    }
}
