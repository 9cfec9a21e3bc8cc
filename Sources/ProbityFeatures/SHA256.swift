// SHA-256 (FIPS 180-4), for the model and input digests packs record as provenance. Streams a file
// in chunks so a model is hashed without reading it whole into memory; the compression itself is
// CKernels' (sha256.c).

import CKernels
import Foundation

/// An incremental SHA-256. Whole blocks go to the C kernel (`pk_sha256_compress`: the CPU's SHA
/// extensions where it has them); a partial block waits in `buffer` for the next update.
public struct SHA256 {
    /// H0..H7 before the first block (FIPS 180-4 §5.3.3).
    public static let initialState: [UInt32] = [0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]

    private var h = SHA256.initialState
    private var buffer: [UInt8] = []
    private var length: UInt64 = 0

    /// Whether whole blocks run on the CPU's SHA extensions.
    public static var accelerated: Bool { pk_sha256_accelerated() != 0 }

    mutating func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return }
        length &+= UInt64(bytes.count)
        var i = 0
        if !buffer.isEmpty {
            let take = min(64 - buffer.count, bytes.count)
            buffer.append(contentsOf: UnsafeBufferPointer(start: base, count: take))
            i = take
            if buffer.count == 64 {
                buffer.withUnsafeBufferPointer { b in if let p = b.baseAddress { Self.compress(&h, p, blocks: 1) } }
                buffer.removeAll(keepingCapacity: true)
            }
        }
        let blocks = (bytes.count - i) / 64
        if blocks > 0 {
            Self.compress(&h, base + i, blocks: blocks)
            i += 64 * blocks
        }
        if i < bytes.count { buffer.append(contentsOf: UnsafeBufferPointer(start: base + i, count: bytes.count - i)) }
    }

    mutating func update(_ bytes: [UInt8]) { bytes.withUnsafeBytes { update($0) } }

    private static func compress(_ h: inout [UInt32], _ p: UnsafePointer<UInt8>, blocks: Int) {
        h.withUnsafeMutableBufferPointer { state in
            if let s = state.baseAddress { pk_sha256_compress(s, p, blocks) }
        }
    }

    /// The digest as 64 lowercase hex digits.
    mutating func finalize() -> String {
        let bits = length &* 8
        var tail: [UInt8] = [0x80]
        while (buffer.count + tail.count) % 64 != 56 { tail.append(0) }
        for s in stride(from: 56, through: 0, by: -8) { tail.append(UInt8(truncatingIfNeeded: bits >> UInt64(s))) }
        let saved = length
        update(tail)
        length = saved
        return h.map { String(format: "%08x", $0) }.joined()
    }

    /// The hex digest of `bytes`.
    public static func hex(_ bytes: [UInt8]) -> String {
        bytes.withUnsafeBytes { hex($0) }
    }

    /// The hex digest of bytes in memory (a mapped file's).
    public static func hex(_ bytes: UnsafeRawBufferPointer) -> String {
        var s = SHA256()
        s.update(bytes)
        return s.finalize()
    }

    /// The digest of a whole file (lowercase hex), read in 4 MiB chunks.
    public static func hex(file path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw FeatureError.missingFile(path: path, what: "file to hash")
        }
        defer { try? handle.close() }
        var s = SHA256()
        while true {
            let chunk = handle.readData(ofLength: 4 << 20)
            if chunk.isEmpty { break }
            chunk.withUnsafeBytes { s.update($0) }
        }
        return s.finalize()
    }
}
