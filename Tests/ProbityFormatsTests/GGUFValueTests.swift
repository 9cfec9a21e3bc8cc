// GGUFValue accessors: which conversions succeed and which return nil.

import Testing
import ProbityFormats

@Suite struct GGUFValueTests {
    @Test func integers() {
        #expect(GGUFValue.uint8(200).intValue == 200)
        #expect(GGUFValue.int16(-3).intValue == -3)
        #expect(GGUFValue.uint64(UInt64(Int.max)).intValue == Int.max)
        #expect(GGUFValue.uint64(UInt64(Int.max) + 1).intValue == nil)
        #expect(GGUFValue.float32(1).intValue == nil)
        #expect(GGUFValue.bool(true).intValue == nil)
        #expect(GGUFValue.string("1").intValue == nil)
    }

    @Test func doublesStringsBools() {
        #expect(GGUFValue.float32(0.5).doubleValue == 0.5)
        #expect(GGUFValue.float64(1e300).doubleValue == 1e300)
        #expect(GGUFValue.uint64(UInt64.max).doubleValue == Double(UInt64.max))
        #expect(GGUFValue.int32(-7).doubleValue == -7)
        #expect(GGUFValue.string("x").doubleValue == nil)
        #expect(GGUFValue.string("x").stringValue == "x" && GGUFValue.int8(1).stringValue == nil)
        #expect(GGUFValue.bool(false).boolValue == false && GGUFValue.uint8(0).boolValue == nil)
    }

    @Test func arrays() {
        let strings = GGUFValue.array([.string("a"), .string("b")])
        #expect(strings.stringArray == ["a", "b"])
        #expect(strings.intArray == nil && strings.floatArray == nil)
        #expect(GGUFValue.array([.string("a"), .int32(1)]).stringArray == nil)
        #expect(GGUFValue.array([.float32(0.25), .int32(2), .float64(-1)]).floatArray == [0.25, 2, -1])
        #expect(GGUFValue.array([.int32(1), .uint64(2)]).intArray == [1, 2])
        #expect(GGUFValue.array([.int32(1), .uint64(UInt64.max)]).intArray == nil)
        #expect(GGUFValue.array([]).stringArray == [])
        #expect(GGUFValue.string("a").arrayValue == nil)
    }

    @Test func typeNamesAndIDs() {
        #expect(GGUFValue.uint32(1).typeName == "uint32")
        #expect(GGUFValue.array([.string("a")]).typeName == "array[string]")
        #expect(GGUFValue.array([.array([.float64(1)])]).typeName == "array[array[float64]]")
        let ids: [(GGUFValue, UInt32)] = [
            (.uint8(0), 0), (.int8(0), 1), (.uint16(0), 2), (.int16(0), 3), (.uint32(0), 4), (.int32(0), 5),
            (.float32(0), 6), (.bool(false), 7), (.string(""), 8), (.array([]), 9), (.uint64(0), 10),
            (.int64(0), 11), (.float64(0), 12),
        ]
        for (v, id) in ids { #expect(v.typeID == id, "\(v.typeName)") }
    }

    @Test func summaries() {
        #expect(GGUFValue.string("a\nb").summary() == "\"a\\nb\"")
        #expect(GGUFValue.array([.int32(1), .int32(2), .int32(3), .int32(4)]).summary() == "array[int32] (4) [1, 2, 3, …]")
        #expect(GGUFValue.string(String(repeating: "x", count: 100)).summary(maxLength: 5) == "\"xxxxx…\" (100 bytes)")
    }
}
