// How fast a model file is hashed (every pack that names its model's digest makes a command hash the
// model when it loads): SHA256.hex(file:) over the default model, and the compression alone over
// the same bytes in memory, dispatched and portable (the path of a machine without SHA extensions).
// Prints `digest:` lines (docs/BENCHMARKS.md, "Digests").

import CKernels
import Foundation
import ProbityFeatures
import ProbityTestSupport
import Testing

@Suite struct DigestBenchmark {
    @Test func modelFileDigest() throws {
        let path = try TestData.defaultModelPath()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
        let mb = Double(bytes.count) / 1e6
        func best(_ body: () throws -> Void) rethrows -> Double {
            var times: [Double] = []
            for _ in 0..<5 {
                let t0 = DispatchTime.now().uptimeNanoseconds
                try body()
                times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9)
            }
            return times.min() ?? .nan
        }
        let file = try best { _ = try SHA256.hex(file: path) }
        let blocks = bytes.count / 64
        let kernel = best {
            var state = SHA256.initialState
            bytes.withUnsafeBufferPointer { d in state.withUnsafeMutableBufferPointer { pk_sha256_compress($0.baseAddress!, d.baseAddress!, blocks) } }
        }
        let portable = best {
            var state = SHA256.initialState
            bytes.withUnsafeBufferPointer { d in state.withUnsafeMutableBufferPointer { pk_sha256_compress_portable($0.baseAddress!, d.baseAddress!, blocks) } }
        }
        print(String(format: "digest: SHA256.hex(file:) of the default model (%.1f MB, SHA extensions %@): %.3f s, %.0f MB/s",
                     mb, SHA256.accelerated ? "on" : "off", file, mb / file))
        print(String(format: "digest: pk_sha256_compress of the same bytes in memory: %.3f s, %.0f MB/s", kernel, mb / kernel))
        print(String(format: "digest: portable C compression of the same bytes in memory: %.3f s, %.0f MB/s", portable, mb / portable))
        #expect(file > 0 && kernel > 0 && portable > 0)
    }
}
