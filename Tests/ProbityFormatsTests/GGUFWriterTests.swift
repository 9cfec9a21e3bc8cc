// GGUFWriter -> GGUFFile round trips: every value type, nested arrays, tensors of several types,
// a non-default alignment, version 2; and a byte-exact rewrite of the default model.

import Foundation
import Testing
import ProbityFormats
import ProbityTensor
import ProbityTestSupport

@Suite struct GGUFWriterTests {
    static let allValues: [(String, GGUFValue)] = [
        ("u8", .uint8(250)), ("i8", .int8(-7)), ("u16", .uint16(65535)), ("i16", .int16(-300)),
        ("u32", .uint32(4_000_000_000)), ("i32", .int32(-2_000_000_000)),
        ("u64", .uint64(UInt64.max)), ("i64", .int64(Int64.min)),
        ("f32", .float32(-1.5e-5)), ("f64", .float64(1e300)), ("t", .bool(true)), ("f", .bool(false)),
        ("s", .string("héllo\n\u{1F600}")), ("empty", .string("")),
        ("strings", .array([.string("a"), .string(""), .string("Ġthe")])),
        ("floats", .array([.float32(0.5), .float32(-2)])),
        ("nested", .array([.array([.int32(1), .int32(2)]), .array([.string("x")]), .array([])])),
        ("none", .array([])),
    ]

    func bytes(count: Int, seed: UInt8) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 * 7) &+ seed } }

    @Test func roundTripValuesAndTensors() throws {
        var w = GGUFWriter(alignment: 64)
        for (k, v) in Self.allValues { try w.set(k, v) }
        let specs: [(String, GGMLType, [Int])] = [
            ("f32", .f32, [3, 2]), ("f16", .f16, [5]), ("q41", .q4_1, [64, 2]), ("q80", .q8_0, [32]),
            ("i32", .i32, [1, 1, 1, 4]),
        ]
        var datas: [[UInt8]] = []
        for (i, (name, type, shape)) in specs.enumerated() {
            let data = bytes(count: type.byteCount(elements: shape.reduce(1, *)) ?? 0, seed: UInt8(i))
            datas.append(data)
            try w.addTensor(name: name, type: type, shape: shape, data: data)
        }
        let f = try GGUFFile(bytes: w.bytes(), name: "rt.gguf")
        #expect(f.version == 3)
        #expect(f.alignment == 64)
        #expect(f.metadataKeys == ["general.alignment"] + Self.allValues.map(\.0))
        for (k, v) in Self.allValues { #expect(f.value(k) == v, "\(k)") }
        #expect(f.dataOffset % 64 == 0)
        #expect(f.tensors.map(\.name) == specs.map(\.0))
        for (i, (name, type, shape)) in specs.enumerated() {
            let t = try #require(f.tensor(named: name))
            #expect(t.type == type && t.shape == shape)
            #expect(t.offset % 64 == 0)
            #expect(Array(f.data(for: t)) == datas[i])
        }
        #expect(f.value("nested")?.typeName == "array[array[int32]]")
        #expect(f.value("strings")?.stringArray == ["a", "", "Ġthe"])
        #expect(f.value("floats")?.floatArray == [0.5, -2])
    }

    @Test func versionTwoAndFloatTensorsThroughAFile() throws {
        var w = GGUFWriter(version: 2)
        try w.set("general.architecture", .string("llama"))
        try w.addTensor(name: GGUFTensorName.controlVector(layer: 1), shape: [4], floats: [1, -2, 0.25, 8])
        let url = try scratchDirectory().appendingPathComponent("cv.gguf")
        defer { try? FileManager.default.removeItem(at: url.deletingLastPathComponent()) }
        try w.write(to: url.path)
        let f = try GGUFFile(path: url.path)
        #expect(f.version == 2 && f.alignment == 32)
        let t = try #require(f.tensor(named: "direction.1"))
        #expect(f.data(for: t).withMemoryRebound(to: Float.self) { Array($0) } == [1, -2, 0.25, 8])
    }

    @Test func writerRejectsBadInput() throws {
        var w = GGUFWriter(name: "w.gguf")
        try w.addTensor(name: "a", type: .f32, shape: [2], data: [UInt8](repeating: 0, count: 8))
        #expect(formatError { try w.addTensor(name: "a", type: .f32, shape: [2], data: [UInt8](repeating: 0, count: 8)) }
                == .duplicateTensor(path: "w.gguf", offset: 0, name: "a"))
        #expect(formatError { try w.addTensor(name: "b", type: .f32, shape: [2], data: [0, 0, 0]) }
                == .sizeMismatch(path: "w.gguf", tensor: "b", expected: 8, found: 3))
        #expect(formatError { try w.addTensor(name: "c", type: .q4_0, shape: [16], data: []) }
                == .partialBlock(path: "w.gguf", tensor: "c", type: "Q4_0", shape: [16], blockSize: 32))
        #expect(formatError { try w.set("mixed", .array([.int32(1), .string("x")])) }
                == .wrongValueType(path: "w.gguf", key: "mixed", expected: "array elements all of type int32",
                                   found: "an element of type string"))
    }

    /// Writing back what the reader found reproduces llama.cpp's file byte for byte: both
    /// sides agree on every field, the padding and the offsets.
    @Test func rewritesTheDefaultModelExactly() throws {
        let path = try TestData.defaultModelPath()
        let f = try GGUFFile(path: path)
        var w = GGUFWriter(alignment: f.alignment)
        for k in f.metadataKeys { try w.set(k, try #require(f.value(k))) }
        for t in f.tensors { try w.addTensor(name: t.name, type: t.type, shape: t.shape, data: Array(f.data(for: t))) }
        let original = try MappedFile(path: path)
        let rewritten = w.bytes()
        #expect(rewritten.count == original.bytes.count)
        #expect(rewritten.elementsEqual(original.bytes))
    }
}

@Suite struct GGUFTensorLookupTests {
    @Test func requiredAndOptionalTensors() throws {
        var w = GGUFWriter()
        try w.addTensor(name: "blk.3.attn_q.weight", type: .q4_1, shape: [576, 192],
                        data: [UInt8](repeating: 0, count: 576 * 192 / 32 * 20))
        let f = try GGUFFile(bytes: w.bytes(), name: "m.gguf")
        let q = GGUFTensorName.attnQ(block: 3)
        #expect(try f.requiredTensor(q, shape: [576, 192], types: [.q4_1, .q8_0]).byteCount == 69_120)
        let wrongShape = formatError { _ = try f.requiredTensor(q, shape: [576, 576]) }
        #expect(wrongShape == .tensorShapeMismatch(path: "m.gguf", name: q, expected: [576, 576], found: [576, 192]))
        #expect(wrongShape?.description == "m.gguf: tensor blk.3.attn_q.weight: expected shape [576, 576], found [576, 192]")
        #expect(formatError { _ = try f.requiredTensor(q, shape: [576, 192], types: [.f32]) }
                == .tensorTypeMismatch(path: "m.gguf", name: q, expected: ["F32"], found: "Q4_1"))
        #expect(formatError { _ = try f.requiredTensor("output.weight", shape: [576, 49152]) }
                == .missingTensor(path: "m.gguf", name: "output.weight"))
        #expect(try f.optionalTensor("output.weight", shape: [576, 49152]) == nil)
    }
}
