// safetensors: writer -> reader round trips, float conversions from known bit patterns, and
// malformed headers that must each fail with their own FormatError.

import Foundation
import Testing
import ProbityFormats

@Suite struct SafeTensorsTests {
    let p = "bad.safetensors"

    /// A file from a raw JSON header and data bytes, with no validation.
    func raw(_ json: String, data: [UInt8] = []) -> [UInt8] {
        var r = RawBytes()
        r.u64(UInt64(json.utf8.count)); r.raw(Array(json.utf8)); r.raw(data)
        return r.bytes
    }

    func error(_ json: String, data: [UInt8] = []) -> FormatError? {
        formatError { _ = try SafeTensorsFile(bytes: raw(json, data: data), name: p) }
    }

    func le16(_ values: [UInt16]) -> [UInt8] {
        values.flatMap { v in withUnsafeBytes(of: v.littleEndian) { Array($0) } }
    }

    @Test func roundTrip() throws {
        var w = SafeTensorsWriter()
        w.metadata = ["format": "pt", "note": "ünïcode / slash"]
        try w.addTensor(name: "W_enc", shape: [2, 3], floats: [1, 2, 3, -4, 0.5, 1e-8])
        try w.addTensor(name: "half", dtype: .f16, shape: [5], data: le16([0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00]))
        try w.addTensor(name: "brain", dtype: .bf16, shape: [2], data: le16([0x3F80, 0xC0A0]))
        let d: [Double] = [1e-300, -2.5]
        try w.addTensor(name: "double", dtype: .f64, shape: [2], data: d.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } })
        try w.addTensor(name: "ids", dtype: .i32, shape: [], data: [7, 0, 0, 0])
        try w.addTensor(name: "mask", dtype: .bool, shape: [3], data: [1, 0, 1])
        try w.addTensor(name: "empty", dtype: .u8, shape: [0, 3], data: [])
        let bytes = try w.bytes()
        let headerLength = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        #expect(headerLength % 8 == 0)

        let f = try SafeTensorsFile(bytes: bytes, name: "rt.safetensors")
        #expect(f.metadata == w.metadata)
        #expect(f.dataOffset == 8 + headerLength)
        #expect(Set(f.tensors.map(\.name)) == ["W_enc", "half", "brain", "double", "ids", "mask", "empty"])
        let enc = try #require(f.tensor(named: "W_enc"))
        #expect(enc.dtype == .f32 && enc.shape == [2, 3] && enc.byteCount == 24)
        #expect(try f.floats(for: enc) == [1, 2, 3, -4, 0.5, 1e-8])
        #expect(try f.floats(named: "half") == [1, -2, 65504, 0x1p-24, .infinity])
        #expect(try f.floats(named: "brain") == [1, -5])
        #expect(try f.floats(named: "double") == [Float(1e-300), -2.5])
        let ids = try #require(f.tensor(named: "ids"))
        #expect(ids.shape == [] && ids.elementCount == 1 && Array(f.data(for: ids)) == [7, 0, 0, 0])
        #expect(Array(f.data(for: try #require(f.tensor(named: "mask")))) == [1, 0, 1])
        #expect(try #require(f.tensor(named: "empty")).byteCount == 0)
        #expect(formatError { _ = try f.floats(for: ids) }
                == .unsupported(path: "rt.safetensors", what: "tensor 'ids': cannot convert dtype I32 to floats (expected F32, F16, BF16 or F64)"))
    }

    /// Floats written as F16/BF16 round to nearest, ties to even, and read back as those values;
    /// a finite value beyond F16's range is an error naming the element.
    @Test func halfPrecisionFloats() throws {
        let values: [Float] = [1, -2, 65504, 0x1p-24, 1 + 0x1p-11, 1 + 0x1p-11 + 0x1p-20, 3.14159, -0.0, .infinity]
        var w = SafeTensorsWriter()
        try w.addTensor(name: "h", shape: [values.count], floats: values, as: .f16)
        try w.addTensor(name: "b", shape: [4], floats: [1, 1 + 0x1p-8, 1 + 0x1p-8 + 0x1p-20, -3.14159], as: .bf16)
        let f = try SafeTensorsFile(bytes: try w.bytes(), name: "h.safetensors")
        #expect(try #require(f.tensor(named: "h")).dtype == .f16)
        #expect(try f.floats(named: "h") == [1, -2, 65504, 0x1p-24, 1, 1 + 0x1p-10, 3.140625, -0.0, .infinity])
        #expect(try f.floats(named: "b") == [1, 1, 1 + 0x1p-7, -3.140625])
        var big = SafeTensorsWriter(name: "big.safetensors")
        #expect(formatError { try big.addTensor(name: "x", shape: [2], floats: [1, 70000], as: .f16) }
                == .cannotWrite(path: "big.safetensors", reason: "tensor 'x' element 1 is 70000.0, beyond F16's range (±65504)"))
        #expect(formatError { try big.addTensor(name: "y", shape: [1], floats: [1], as: .i32) }
                == .cannotWrite(path: "big.safetensors", reason: "tensor 'y': floats can be written as F32, F16 or BF16, not I32"))
    }

    @Test func throughAFile() throws {
        var w = SafeTensorsWriter()
        try w.addTensor(name: "b_dec", shape: [4], floats: [0, 1, 2, 3])
        let url = try scratchDirectory().appendingPathComponent("sae_weights.safetensors")
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        try w.write(to: url.path)
        let f = try SafeTensorsFile(path: url.path)
        #expect(try f.floats(named: "b_dec") == [0, 1, 2, 3])
        #expect(f.metadata.isEmpty)
    }

    @Test func handWrittenHeader() throws {
        // As another writer might lay it out: keys unsorted, spaces, metadata, no padding.
        let json = #"{"b": {"dtype": "U16", "shape": [1], "data_offsets": [4, 6]}, "__metadata__": {"k": "v"}, "a": {"data_offsets": [0, 4], "shape": [2], "dtype": "I16"}}"#
        let f = try SafeTensorsFile(bytes: raw(json, data: [1, 0, 2, 0, 3, 0]), name: p)
        #expect(f.tensors.map(\.name) == ["a", "b"])
        #expect(f.tensors.map(\.dataRange) == [0..<4, 4..<6])
        #expect(f.metadata == ["k": "v"])
    }

    @Test func headerLengthPastEnd() {
        var r = RawBytes()
        r.u64(1000); r.raw(Array("{}".utf8))
        #expect(formatError { _ = try SafeTensorsFile(bytes: r.bytes, name: p) }
                == .lengthPastEnd(path: p, offset: 0, what: "header length", length: 1000, left: 2))
        #expect(formatError { _ = try SafeTensorsFile(bytes: [1, 2, 3], name: p) }
                == .truncated(path: p, offset: 0, what: "header length", needed: 8, left: 3))
    }

    @Test func headerLargerThanCap() throws {
        // A sparse file: 200 MB on paper, nothing on disk.
        let url = try scratchDirectory().appendingPathComponent("huge.safetensors")
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        var r = RawBytes()
        r.u64(150_000_000)
        #expect(FileManager.default.createFile(atPath: url.path, contents: Data(r.bytes)))
        let h = try FileHandle(forWritingTo: url)
        try h.truncate(atOffset: 200_000_000)
        try h.close()
        #expect(formatError { _ = try SafeTensorsFile(path: url.path) }
                == .headerTooLarge(path: url.path, length: 150_000_000, limit: 100_000_000))
    }

    /// Foundation's tree costs about 250 bytes a value: the header may hold `maxHeaderValues` (the
    /// top object, `__metadata__` and its entries here), and one more is refused before any tree
    /// is built (a 97 MB header of short entries, inside the length cap, took 2.2 GB).
    @Test func headerValuesAreCapped() throws {
        func header(_ entries: Int) -> String {
            "{\"__metadata__\": {" + (0..<entries).map { "\"k\($0)\": \"\"" }.joined(separator: ", ") + "}}"
        }
        let most = SafeTensorsLimits.maxHeaderValues - 2
        let f = try SafeTensorsFile(bytes: raw(header(most)), name: p)
        #expect(f.metadata.count == most)
        let over = header(most + 1)
        let e = syntaxError(over)
        #expect(e?.expected == "at most \(SafeTensorsLimits.maxHeaderValues) values (a cap on the memory the decoded text takes)")
        #expect(e?.offset == 8 + over.utf8.count - 4)  // at the last entry's value, `""}}`
    }

    /// The JSONSyntaxError opening a file with this header throws, or nil.
    func syntaxError(_ json: String, data: [UInt8] = []) -> JSONSyntaxError? {
        do { _ = try SafeTensorsFile(bytes: raw(json, data: data), name: p) } catch let e as JSONSyntaxError { return e } catch {}
        return nil
    }

    @Test func badJSON() {
        // Offsets count from the start of the file: the header starts at byte 8.
        let cut = syntaxError(#"{"a": {"dtype": "F32""#)
        #expect(cut?.offset == 8 + 21 && cut?.expected == "',' or '}'" && cut?.found == "the end of the text")
        #expect(error("[1, 2]") == .badHeaderField(path: p, at: "(header)", expected: "a JSON object", found: "[1, 2]"))
    }

    @Test func headerIsStrictJSON() {
        // What safetensors (serde_json) refuses and Foundation alone accepts.
        let entry = #""t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}"#
        let zeros: [UInt8] = [0, 0, 0, 0]
        let trailing = syntaxError("{\(entry),}", data: zeros)
        #expect(trailing?.offset == 8 + 2 + entry.utf8.count)
        #expect(trailing?.description == "bad.safetensors: offset \(8 + 2 + entry.utf8.count): header is not valid JSON: "
                + "expected a key in double quotes after ',' (trailing commas are not JSON), found '}'")
        #expect(syntaxError("{\(entry)} // weights", data: zeros)?.found == "'/' (comments are not JSON)")
        #expect(syntaxError("{\(entry), \(entry)}", data: zeros)?.found == "the key \"t\" a second time")
        #expect(syntaxError(#"{"t": {"dtype": "F32", "shape": [01], "data_offsets": [0, 4]}}"#, data: zeros)?.offset == 8 + 34)
        // Space padding after the object, as the reference writer adds, is whitespace.
        #expect((try? SafeTensorsFile(bytes: raw("{\(entry)}   ", data: zeros), name: p)) != nil)
    }

    @Test func wrongDType() {
        #expect(error(#"{"t": {"dtype": "F33", "shape": [1], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0])
                == .unknownDType(path: p, tensor: "t", dtype: "F33"))
        #expect(error(#"{"t": {"dtype": 4, "shape": [1], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0])
                == .badHeaderField(path: p, at: "t.dtype", expected: "a dtype string", found: "the number 4"))
    }

    @Test func badShapesAndOffsets() {
        let shapeExpected = "an array of at most 16 non-negative integers"
        #expect(error(#"{"t": {"dtype": "F32", "shape": [-1], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0])
                == .badHeaderField(path: p, at: "t.shape", expected: shapeExpected, found: "[-1]"))
        #expect(error(#"{"t": {"dtype": "F32", "shape": [1.5], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0])
                == .badHeaderField(path: p, at: "t.shape", expected: shapeExpected, found: "[1.5]"))
        #expect(error(#"{"t": {"dtype": "F32", "shape": [true], "data_offsets": [0, 4]}}"#, data: [0, 0, 0, 0])
                == .badHeaderField(path: p, at: "t.shape", expected: shapeExpected, found: "[true]"))
        #expect(error(#"{"t": {"dtype": "F32", "shape": [1], "data_offsets": [4, 0]}}"#, data: [0, 0, 0, 0])
                == .badHeaderField(path: p, at: "t.data_offsets", expected: "[begin, end] with 0 <= begin <= end", found: "[4, 0]"))
        #expect(error(#"{"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 18446744073709551615]}}"#)
                == .badHeaderField(path: p, at: "t.data_offsets", expected: "[begin, end] with 0 <= begin <= end",
                                   found: "[0, 18446744073709551615]"))
        #expect(error(#"{"t": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4], "extra": 1}}"#, data: [0, 0, 0, 0])
                == .badHeaderField(path: p, at: "t.extra", expected: "only dtype, shape and data_offsets", found: "an extra field"))
        #expect(error(#"{"t": {"dtype": "F32", "shape": [4294967296, 4294967296], "data_offsets": [0, 4]}}"#)
                == .elementCountOverflow(path: p, tensor: "t", shape: [4294967296, 4294967296]))
    }

    @Test func sizeMismatch() {
        #expect(error(#"{"t": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}}"#, data: [UInt8](repeating: 0, count: 24))
                == .sizeMismatch(path: p, tensor: "t", expected: 24, found: 20))
    }

    @Test func offsetsPastData() {
        #expect(error(#"{"t": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}"#, data: [UInt8](repeating: 0, count: 8))
                == .tensorOutOfBounds(path: p, tensor: "t", start: 4, count: 8, available: 8))
    }

    @Test func overlappingOffsets() {
        let json = #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#
        #expect(error(json, data: [UInt8](repeating: 0, count: 8))
                == .overlappingTensors(path: p, first: "a", second: "b", firstEnd: 8, secondStart: 4))
    }

    /// The tensors must tile the data section exactly, as the safetensors library checks.
    @Test func tensorsTileTheData() throws {
        let zeros = [UInt8](repeating: 0, count: 16)
        let gap = #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}, "b": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}"#
        let e = error(gap, data: [UInt8](zeros.prefix(12)))
        #expect(e == .tensorGap(path: p, tensor: "b", expected: 4, found: 8, after: "a"))
        #expect(e?.description == "bad.safetensors: tensor 'b': data offsets start at 8, expected 4, where tensor 'a' ends "
                + "(safetensors tensors tile the data section, without gaps)")
        let late = #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}"#
        #expect(error(late, data: [UInt8](zeros.prefix(8))) == .tensorGap(path: p, tensor: "a", expected: 0, found: 4, after: nil))
        let short = #"{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#
        let trailing = error(short, data: [UInt8](zeros.prefix(6)))
        #expect(trailing == .dataSizeMismatch(path: p, covered: 4, size: 6))
        #expect(trailing?.description == "bad.safetensors: the tensors cover 4 bytes of data, but the data section holds 6 bytes (expected them to cover it exactly)")
        #expect(error("{}", data: [0]) == .dataSizeMismatch(path: p, covered: 0, size: 1))
        // Empty tensors sit where the others meet; the order of the header does not matter.
        let fine = #"{"b": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}, "e": {"dtype": "I8", "shape": [0], "data_offsets": [4, 4]}, "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}"#
        let f = try SafeTensorsFile(bytes: raw(fine, data: [UInt8](zeros.prefix(8))), name: p)
        #expect(f.tensors.map(\.name) == ["a", "e", "b"])
        // An empty tensor inside another is an overlap.
        let inside = #"{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "e": {"dtype": "I8", "shape": [0], "data_offsets": [4, 4]}}"#
        #expect(error(inside, data: [UInt8](zeros.prefix(8)))
                == .overlappingTensors(path: p, first: "a", second: "e", firstEnd: 8, secondStart: 4))
    }

    @Test func badMetadata() {
        #expect(error(#"{"__metadata__": {"k": 3}}"#)
                == .badHeaderField(path: p, at: "__metadata__.k", expected: "a string", found: "the number 3"))
        #expect(error(#"{"__metadata__": "x"}"#)
                == .badHeaderField(path: p, at: "__metadata__", expected: "an object of strings", found: "the string \"x\""))
    }

    @Test func writerRejectsWrongSizes() throws {
        var w = SafeTensorsWriter(name: "w.safetensors")
        #expect(formatError { try w.addTensor(name: "a", dtype: .f16, shape: [3], data: [0, 0]) }
                == .sizeMismatch(path: "w.safetensors", tensor: "a", expected: 6, found: 2))
        try w.addTensor(name: "a", dtype: .u8, shape: [1], data: [0])
        #expect(formatError { try w.addTensor(name: "a", dtype: .u8, shape: [1], data: [0]) }
                == .duplicateTensor(path: "w.safetensors", offset: 0, name: "a"))
    }
}
