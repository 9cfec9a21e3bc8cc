// A JSON document as a typed tree, for the checks that the report's own types cannot make while
// decoding (the schema version before anything else, keys the schema does not know).

import Foundation
import ProbityFormats

/// Any JSON value.
enum JSONValue: Codable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        if var items = try? decoder.unkeyedContainer() {
            var out: [JSONValue] = []
            while !items.isAtEnd { out.append(try items.decode(JSONValue.self)) }
            self = .array(out)
            return
        }
        if let keyed = try? decoder.container(keyedBy: AnyKey.self) {
            var out: [String: JSONValue] = [:]
            for key in keyed.allKeys { out[key.stringValue] = try keyed.decode(JSONValue.self, forKey: key) }
            self = .object(out)
            return
        }
        let single = try decoder.singleValueContainer()
        if single.decodeNil() { self = .null } else if let b = try? single.decode(Bool.self) { self = .bool(b) } else if let n = try? single.decode(Double.self) {
            self = .number(n)
        } else {
            self = .string(try single.decode(String.self))
        }
    }

    func encode(to encoder: any Encoder) throws {
        switch self {
        case .null:
            var c = encoder.singleValueContainer()
            try c.encodeNil()
        case .bool(let b):
            var c = encoder.singleValueContainer()
            try c.encode(b)
        case .number(let n):
            var c = encoder.singleValueContainer()
            try c.encode(n)
        case .string(let s):
            var c = encoder.singleValueContainer()
            try c.encode(s)
        case .array(let items):
            var c = encoder.unkeyedContainer()
            for item in items { try c.encode(item) }
        case .object(let fields):
            var c = encoder.container(keyedBy: AnyKey.self)
            for (k, v) in fields { try c.encode(v, forKey: AnyKey(k)) }
        }
    }

    /// The path of the first key (in sorted order, depth first) that this value has and `other`
    /// lacks at the same place; nil when there is none. Array items are compared index by index.
    func firstKey(missingFrom other: JSONValue, at path: String = "") -> String? {
        switch (self, other) {
        case let (.object(mine), .object(theirs)):
            for key in mine.keys.sorted() {
                let here = path.isEmpty ? key : "\(path).\(key)"
                guard let t = theirs[key], let m = mine[key] else { return here }
                if let found = m.firstKey(missingFrom: t, at: here) { return found }
            }
            return nil
        case let (.array(mine), .array(theirs)):
            for (i, (m, t)) in zip(mine, theirs).enumerated() {
                if let found = m.firstKey(missingFrom: t, at: "\(path)[\(i)]") { return found }
            }
            return nil
        default:
            return nil
        }
    }

    /// `firstKey(missingFrom:)` of two validated JSON texts, read in place (no tree of either):
    /// the first key, in sorted order at each level, of the value at `mine` in `a` that the value
    /// at `theirs` in `b` lacks.
    static func firstKey(in a: UnsafeRawBufferPointer, at mine: Int, missingFrom b: UnsafeRawBufferPointer, at theirs: Int,
                         path: String = "") throws -> String? {
        switch (JSONOutline.kind(a, at: mine), JSONOutline.kind(b, at: theirs)) {
        case (.object?, .object?):
            var members: [(key: String, value: Int)] = []
            try JSONOutline.forEachMember(a, ofObjectAt: mine) { key, value in
                members.append((String(decoding: key, as: UTF8.self), value.lowerBound))
                return true
            }
            var other: [String: Int] = [:]
            try JSONOutline.forEachMember(b, ofObjectAt: theirs) { key, value in
                other[String(decoding: key, as: UTF8.self)] = value.lowerBound
                return true
            }
            for (key, value) in members.sorted(by: { $0.key < $1.key }) {
                let here = path.isEmpty ? key : "\(path).\(key)"
                guard let t = other[key] else { return here }
                if let found = try firstKey(in: a, at: value, missingFrom: b, at: t, path: here) { return found }
            }
            return nil
        case (.array?, .array?):
            var other: [Int] = []
            try JSONOutline.forEachElement(b, ofArrayAt: theirs) { other.append($0.lowerBound); return true }
            var found: String?
            var i = 0
            try JSONOutline.forEachElement(a, ofArrayAt: mine) { range in
                guard i < other.count else { return false }
                found = try firstKey(in: a, at: range.lowerBound, missingFrom: b, at: other[i], path: "\(path)[\(i)]")
                i += 1
                return found == nil
            }
            return found
        default:
            return nil
        }
    }

    /// A few words on what the value is, for error messages.
    var summary: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .number(let n): return n == n.rounded() && abs(n) < 1e15 ? "\(Int(n))" : "\(n)"
        case .string(let s): return "'\(s.prefix(40))'"
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(_ s: String) { stringValue = s }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}
