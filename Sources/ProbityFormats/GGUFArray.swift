// The elements of a GGUF metadata array, kept as one typed Swift array: a uint8 array costs one
// byte of memory per element and a float32 array four, as in the file, where an array of
// `GGUFValue`s would cost 24 each (a hostile 16 MB uint8 array took 400 MB that way).

/// The elements of one GGUF metadata array, read as `GGUFValue`s.
public struct GGUFArray: Sendable, RandomAccessCollection, ExpressibleByArrayLiteral, Equatable {
    enum Storage: Sendable {
        case uint8([UInt8]), int8([Int8]), uint16([UInt16]), int16([Int16]), uint32([UInt32]), int32([Int32])
        case uint64([UInt64]), int64([Int64]), float32([Float]), float64([Double]), bool([Bool]), string([String])
        /// Arrays of arrays, and mixed elements (no file holds them, but a writer may be handed them
        /// and refuses them there).
        case values([GGUFValue])
    }

    let storage: Storage

    init(storage: Storage) { self.storage = storage }

    /// Packs the values into one typed array when they all have the same scalar type.
    public init(_ values: [GGUFValue]) {
        guard let first = values.first, values.allSatisfy({ $0.typeID == first.typeID }) else {
            storage = .values(values)
            return
        }
        // Every value has the first one's type (checked above), so none is dropped.
        func all<T>(_ pick: (GGUFValue) -> T?) -> [T] { values.compactMap(pick) }
        switch first {
        case .uint8: storage = .uint8(all { if case let .uint8(v) = $0 { v } else { nil } })
        case .int8: storage = .int8(all { if case let .int8(v) = $0 { v } else { nil } })
        case .uint16: storage = .uint16(all { if case let .uint16(v) = $0 { v } else { nil } })
        case .int16: storage = .int16(all { if case let .int16(v) = $0 { v } else { nil } })
        case .uint32: storage = .uint32(all { if case let .uint32(v) = $0 { v } else { nil } })
        case .int32: storage = .int32(all { if case let .int32(v) = $0 { v } else { nil } })
        case .uint64: storage = .uint64(all { if case let .uint64(v) = $0 { v } else { nil } })
        case .int64: storage = .int64(all { if case let .int64(v) = $0 { v } else { nil } })
        case .float32: storage = .float32(all { if case let .float32(v) = $0 { v } else { nil } })
        case .float64: storage = .float64(all { if case let .float64(v) = $0 { v } else { nil } })
        case .bool: storage = .bool(all { if case let .bool(v) = $0 { v } else { nil } })
        case .string: storage = .string(all { if case let .string(v) = $0 { v } else { nil } })
        case .array: storage = .values(values)
        }
    }

    public init(arrayLiteral elements: GGUFValue...) { self.init(elements) }

    public var startIndex: Int { 0 }
    public var endIndex: Int { count }

    public var count: Int {
        switch storage {
        case let .uint8(a): a.count
        case let .int8(a): a.count
        case let .uint16(a): a.count
        case let .int16(a): a.count
        case let .uint32(a): a.count
        case let .int32(a): a.count
        case let .uint64(a): a.count
        case let .int64(a): a.count
        case let .float32(a): a.count
        case let .float64(a): a.count
        case let .bool(a): a.count
        case let .string(a): a.count
        case let .values(a): a.count
        }
    }

    public subscript(i: Int) -> GGUFValue {
        switch storage {
        case let .uint8(a): .uint8(a[i])
        case let .int8(a): .int8(a[i])
        case let .uint16(a): .uint16(a[i])
        case let .int16(a): .int16(a[i])
        case let .uint32(a): .uint32(a[i])
        case let .int32(a): .int32(a[i])
        case let .uint64(a): .uint64(a[i])
        case let .int64(a): .int64(a[i])
        case let .float32(a): .float32(a[i])
        case let .float64(a): .float64(a[i])
        case let .bool(a): .bool(a[i])
        case let .string(a): .string(a[i])
        case let .values(a): a[i]
        }
    }

    /// The GGUF type id of the elements: the file's declared one, even for an empty array read from
    /// a file; nil for an empty array built in code, and for mixed elements.
    public var elementTypeID: UInt32? {
        switch storage {
        case .uint8: 0
        case .int8: 1
        case .uint16: 2
        case .int16: 3
        case .uint32: 4
        case .int32: 5
        case .float32: 6
        case .bool: 7
        case .string: 8
        case .uint64: 10
        case .int64: 11
        case .float64: 12
        case let .values(a):
            a.first.flatMap { first in a.allSatisfy { $0.typeID == first.typeID } ? first.typeID : nil }
        }
    }

    /// The elements when they are all strings, without a copy.
    public var strings: [String]? {
        switch storage {
        case let .string(a): a
        case let .values(a) where a.isEmpty: []
        default: nil
        }
    }

    /// The elements when they are all float32, without a copy.
    var floats: [Float]? {
        if case let .float32(a) = storage { return a }
        return nil
    }

    /// Same elements in the same order; an empty array equals any empty array, whatever its type.
    public static func == (a: GGUFArray, b: GGUFArray) -> Bool {
        a.count == b.count && zip(a, b).allSatisfy { $0 == $1 }
    }
}
