// Helpers for format tests: a raw little-endian byte builder for hand-made (often malformed)
// files, and a catcher that returns the FormatError a parse threw so tests can compare it exactly.

import Foundation
import ProbityFormats

/// Bytes appended field by field, with no validation at all.
struct RawBytes {
    var bytes: [UInt8] = []

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func f32(_ v: Float) { u32(v.bitPattern) }
    mutating func raw(_ b: [UInt8]) { bytes.append(contentsOf: b) }
    mutating func zeros(_ n: Int) { bytes.append(contentsOf: repeatElement(0, count: n)) }
    mutating func str(_ s: String) { u64(UInt64(s.utf8.count)); raw(Array(s.utf8)) }
    mutating func padTo(_ alignment: Int) { zeros((alignment - bytes.count % alignment) % alignment) }
    var count: Int { bytes.count }

    /// A GGUF header: magic, version, tensor count, metadata count (24 bytes).
    static func gguf(version: UInt32 = 3, tensors: UInt64, pairs: UInt64) -> RawBytes {
        var r = RawBytes()
        r.raw(Array("GGUF".utf8))
        r.u32(version)
        r.u64(tensors)
        r.u64(pairs)
        return r
    }

    /// A uint32 metadata pair.
    mutating func kvU32(_ key: String, _ v: UInt32) { str(key); u32(4); u32(v) }

    /// One tensor info: name, dimension count, dimensions, ggml type id, data offset.
    mutating func tensorInfo(_ name: String, dims: [UInt64], type: UInt32, offset: UInt64) {
        str(name)
        u32(UInt32(dims.count))
        for d in dims { u64(d) }
        u32(type)
        u64(offset)
    }
}

/// The FormatError `body` throws, or nil if it succeeds or throws something else.
func formatError(_ body: () throws -> Void) -> FormatError? {
    do {
        try body()
        return nil
    } catch let e as FormatError {
        return e
    } catch {
        return nil
    }
}

/// Parses `raw` as a GGUF file named `bad.gguf` and returns the FormatError it throws.
func ggufError(_ raw: RawBytes) -> FormatError? {
    formatError { _ = try GGUFFile(bytes: raw.bytes, name: "bad.gguf") }
}

func scratchDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("probity-formats-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
