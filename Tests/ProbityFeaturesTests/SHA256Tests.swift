// The SHA-256 kernel (CKernels/sha256.c): the SHA-extension path against the portable C path on the
// same blocks from many states, and the digest against FIPS 180-4's long-message vector and a digest
// of the default model file computed apart from it (the sha256 scripts/setup checks it by).

import CKernels
import Foundation
import ProbityLM
import Testing
@testable import ProbityFeatures

@Suite struct SHA256Tests {
    /// A deterministic byte stream (xorshift), so a failure reproduces.
    static func bytes(_ n: Int, seed: UInt64) -> [UInt8] {
        var x = seed | 1
        return (0..<n).map { _ in
            x ^= x << 13; x ^= x >> 7; x ^= x << 17
            return UInt8(truncatingIfNeeded: x >> 29)
        }
    }

    @Test func bothPathsGiveTheSameState() {
        for (i, blocks) in [1, 2, 3, 7, 16, 65, 200].enumerated() {
            let data = Self.bytes(64 * blocks, seed: UInt64(1000 + i))
            var start = Self.bytes(32, seed: UInt64(i + 1)).withUnsafeBytes { Array($0.bindMemory(to: UInt32.self)) }
            if i == 0 { start = SHA256.initialState }
            var fast = start, plain = start
            data.withUnsafeBufferPointer { d in
                fast.withUnsafeMutableBufferPointer { pk_sha256_compress($0.baseAddress!, d.baseAddress!, blocks) }
                plain.withUnsafeMutableBufferPointer { pk_sha256_compress_portable($0.baseAddress!, d.baseAddress!, blocks) }
            }
            #expect(fast == plain, "\(blocks) blocks")
        }
    }

    @Test func longMessageAndEveryLength() throws {
        // FIPS 180-4 example: one million 'a'.
        #expect(SHA256.hex([UInt8](repeating: 0x61, count: 1_000_000)) == "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0")
        // Every length around the padding boundaries, whole and fed a byte at a time.
        let data = Self.bytes(200, seed: 7)
        for n in 0...200 {
            var s = SHA256()
            for b in data.prefix(n) { s.update([b]) }
            #expect(s.finalize() == SHA256.hex(Array(data.prefix(n))), "length \(n)")
        }
        #expect(SHA256.hex(Array(data.prefix(55))) == "\(try Self.python(Array(data.prefix(55))))")
    }

    /// The default model file (98 MB) hashes to the digest scripts/setup checks it against (and the
    /// one every pack for it records).
    @Test func defaultModelFile() throws {
        let path = try ModelLocator.resolve("default")
        #expect(try SHA256.hex(file: path) == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53")
    }

    /// Python's hashlib on the same bytes, when Python is on the machine (it is wherever the
    /// setup script ran).
    static func python(_ bytes: [UInt8]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", "import hashlib,sys; print(hashlib.sha256(bytes.fromhex(sys.argv[1])).hexdigest())",
                             bytes.map { String(format: "%02x", $0) }.joined()]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        process.waitUntilExit()
        return String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
