// .npy: the reference logits from Tests/Fixtures/reference (checked against reference.json,
// an independent record of the same numbers), numpy's exact byte layout, round trips, bad files.

import Foundation
import Testing
import ProbityFormats

@Suite struct NPYTests {
    static let referenceDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/reference")

    @Test func readsReferenceLogitsMatchingReferenceJSON() throws {
        let json = try Data(contentsOf: Self.referenceDirectory.appendingPathComponent("reference.json"))
        let root = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        let prompts = try #require(root["prompts"] as? [[String: Any]])
        #expect(prompts.count == 4)
        for prompt in prompts {
            let variants = try #require(prompt["variants"] as? [String: [String: Any]])
            for (_, variant) in variants {
                let file = try #require(variant["logits_file"] as? String)
                let ids = try #require(variant["top10_ids"] as? [Int])
                let logits = try #require(variant["top10_logits"] as? [Double])
                let a = try NPY.read(path: Self.referenceDirectory.appendingPathComponent(file).path)
                #expect(a.dtype == .float32 && a.shape == [49152] && a.values.count == 49152)
                // Foundation's JSON parser may round the last digit of a double, so compare as float32,
                // the precision the logits were stored in.
                let floats = a.floats
                for (id, logit) in zip(ids, logits) { #expect(floats[id] == Float(logit), "\(file)[\(id)]") }
                let best = a.values.indices.max { a.values[$0] < a.values[$1] }
                #expect(best == ids.first)

                let f64 = try NPY.read(path: Self.referenceDirectory
                    .appendingPathComponent(file.replacingOccurrences(of: ".npy", with: "_f64ref.npy")).path)
                #expect(f64.dtype == .float64 && f64.shape == [49152])
                #expect(f64.values.indices.max { f64.values[$0] < f64.values[$1] } == ids.first)
            }
        }
    }

    @Test func plainDefaultFirstValues() throws {
        // Read independently with numpy: a[:3] of the float32 and float64 files.
        let a = try NPY.read(path: Self.referenceDirectory.appendingPathComponent("plain_default_last_logits.npy").path)
        #expect(Array(a.floats.prefix(3)) == [-3.7645020484924316, -16.350357055664062, -13.456625938415527])
        let b = try NPY.read(path: Self.referenceDirectory.appendingPathComponent("plain_default_last_logits_f64ref.npy").path)
        #expect(Array(b.values.prefix(3)) == [-3.760540031293198, -16.468056791537446, -13.668628390073952])
    }

    @Test func encodesAsNumpyDoes() throws {
        // numpy 2.x `np.save` of `np.arange(6, dtype='<f4').reshape(2, 3)`: a 128-byte preamble.
        let bytes = try NPY.encode([0, 1, 2, 3, 4, 5], shape: [2, 3])
        #expect(bytes.count == 128 + 24)
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
        var expected: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0, 118, 0] + Array(dict.utf8)
        expected += [UInt8](repeating: 0x20, count: 127 - expected.count) + [0x0A]
        #expect(Array(bytes.prefix(128)) == expected)
        let one = try NPY.encode([7], shape: [1])
        #expect(String(decoding: one[10..<128], as: UTF8.self).contains("'shape': (1,), }"))
    }

    @Test func roundTrips() throws {
        let dir = try scratchDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let cases: [([Int], [Float])] = [([3], [1, -2.5, .greatestFiniteMagnitude]), ([2, 2, 1], [0, 1, 2, 3]), ([], [42]), ([0, 4], [])]
        for (i, (shape, values)) in cases.enumerated() {
            let path = dir.appendingPathComponent("\(i).npy").path
            try NPY.write(values, shape: shape, to: path)
            let a = try NPY.read(path: path)
            #expect(a.shape == shape && a.floats == values && a.dtype == .float32)
        }
        #expect(formatError { _ = try NPY.encode([1, 2], shape: [3]) }
                == .sizeMismatch(path: "npy", tensor: "array of shape [3]", expected: 12, found: 8))
    }

    /// A v1.0 file with the given header dict and data.
    func npy(_ dict: String, data: [UInt8] = [], version: [UInt8] = [1, 0]) -> [UInt8] {
        let header = Array((dict + "\n").utf8)
        return [0x93] + Array("NUMPY".utf8) + version + [UInt8(header.count), 0] + header + data
    }

    func error(_ bytes: [UInt8]) -> FormatError? { formatError { _ = try NPY.decode(bytes: bytes, name: "bad.npy") } }

    /// The header cap itself: 64 KiB + 1 bytes of header, all present (format 2.0's 32-bit length).
    @Test func headerLongerThanCap() {
        let length = NPY.maxHeaderLength + 1
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [2, 0]
        withUnsafeBytes(of: UInt32(length).littleEndian) { bytes.append(contentsOf: $0) }
        bytes += [UInt8](repeating: 0x20, count: length)
        #expect(error(bytes) == .limitExceeded(path: "bad.npy", offset: 8, what: "npy header length", value: UInt64(length),
                                               limit: NPY.maxHeaderLength))
    }

    @Test func malformed() {
        let ok = "{'descr': '<f4', 'fortran_order': False, 'shape': (1,), }"
        #expect(error(npy(ok, data: [0, 0, 128, 63])) == nil)
        #expect(error(Array("NUMPZ\u{1}\u{0}".utf8)) == .badHeaderField(path: "bad.npy", at: "magic",
                                                                       expected: "\\x93NUMPY (a .npy file)", found: "NUMPZ?"))
        #expect(error(npy(ok, data: [0, 0, 128, 63], version: [9, 9]))
                == .badHeaderField(path: "bad.npy", at: "version", expected: "1.0, 2.0 or 3.0", found: "9.9"))
        var truncated = npy(ok)
        truncated[8] = 200
        #expect(error(truncated) == .lengthPastEnd(path: "bad.npy", offset: 8, what: "npy header length", length: 200, left: ok.utf8.count + 1))
        #expect(error(npy("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", data: [0, 0, 0, 0]))
                == .unsupported(path: "bad.npy", what: "Fortran-ordered arrays are not supported (expected C order)"))
        #expect(error(npy("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", data: [0, 0, 0, 0]))
                == .unknownDType(path: "bad.npy", tensor: "array", dtype: ">f4 (expected <f4 or <f8)"))
        #expect(error(npy(ok, data: [0, 0, 0]))
                == .sizeMismatch(path: "bad.npy", tensor: "array of shape [1]", expected: 4, found: 3))
        #expect(error(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }")) != nil)
        guard case .badHeaderField(_, "header", _, _) = error(npy("{'descr': '<f4', 'shape': (1,), }", data: [0, 0, 0, 0])) else {
            Issue.record("expected a header error for a missing key"); return
        }
        guard case .badHeaderField(_, "header", _, _) = error(npy("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }")) else {
            Issue.record("expected a header error for a negative dimension"); return
        }
    }
}
