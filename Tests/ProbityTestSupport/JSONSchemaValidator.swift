// A JSON Schema (draft 2020-12) validator for the subset docs/report.schema.json uses: type,
// properties, required, additionalProperties, items, enum, minimum, maximum, exclusiveMinimum, exclusiveMaximum, minItems, $ref to #/$defs/...

import Foundation

public struct JSONSchemaValidator {
    public let root: [String: Any]

    public init(root: [String: Any]) { self.root = root }

    /// Every violation, as "path: problem".
    public func validate(_ value: Any) -> [String] {
        var errors: [String] = []
        check(value, against: root, at: "$", into: &errors)
        return errors
    }

    func check(_ value: Any, against schema: [String: Any], at path: String, into errors: inout [String]) {
        if let ref = schema["$ref"] as? String {
            let prefix = "#/$defs/"
            guard ref.hasPrefix(prefix), let defs = root["$defs"] as? [String: Any],
                  let target = defs[String(ref.dropFirst(prefix.count))] as? [String: Any] else {
                errors.append("\(path): unresolvable $ref \(ref)")
                return
            }
            check(value, against: target, at: path, into: &errors)
        }
        if let type = schema["type"] {
            let types = (type as? [String]) ?? [(type as? String) ?? ""]
            guard types.contains(where: { Self.matches(value, $0) }) else {
                errors.append("\(path): expected \(types.joined(separator: " or ")), found \(Self.kind(value))")
                return
            }
        }
        if let options = schema["enum"] as? [Any] {
            if !options.contains(where: { Self.equal($0, value) }) { errors.append("\(path): \(value) is not one of \(options)") }
        }
        if let n = Self.number(value) {
            if let min = schema["minimum"].flatMap(Self.number), n < min { errors.append("\(path): \(n) < minimum \(min)") }
            if let max = schema["maximum"].flatMap(Self.number), n > max { errors.append("\(path): \(n) > maximum \(max)") }
            if let min = schema["exclusiveMinimum"].flatMap(Self.number), n <= min { errors.append("\(path): \(n) <= exclusiveMinimum \(min)") }
            if let max = schema["exclusiveMaximum"].flatMap(Self.number), n >= max { errors.append("\(path): \(n) >= exclusiveMaximum \(max)") }
        }
        if let object = value as? [String: Any], !(value is [Any]) {
            let properties = schema["properties"] as? [String: Any] ?? [:]
            for key in schema["required"] as? [String] ?? [] where object[key] == nil {
                errors.append("\(path): missing required '\(key)'")
            }
            for (key, v) in object {
                if let p = properties[key] as? [String: Any] {
                    check(v, against: p, at: "\(path).\(key)", into: &errors)
                } else if let extra = schema["additionalProperties"] {
                    if Self.isBool(extra), (extra as? Bool) == false {
                        errors.append("\(path): unexpected key '\(key)'")
                    } else if let s = extra as? [String: Any] {
                        check(v, against: s, at: "\(path).\(key)", into: &errors)
                    }
                }
            }
        }
        if let array = value as? [Any], let min = schema["minItems"].flatMap(Self.number), Double(array.count) < min {
            errors.append("\(path): \(array.count) items < minItems \(min)")
        }
        if let array = value as? [Any], let items = schema["items"] as? [String: Any] {
            for (i, v) in array.enumerated() { check(v, against: items, at: "\(path)[\(i)]", into: &errors) }
        }
    }

    static func isBool(_ v: Any) -> Bool {
        // JSONSerialization gives booleans as NSNumbers of type char.
        guard let n = v as? NSNumber else { return false }
        return String(cString: n.objCType) == "c"
    }

    static func number(_ v: Any) -> Double? {
        guard !isBool(v), let n = v as? NSNumber else { return nil }
        return n.doubleValue
    }

    static func matches(_ v: Any, _ type: String) -> Bool {
        switch type {
        case "object": return v is [String: Any]
        case "array": return v is [Any]
        case "string": return v is String
        case "boolean": return isBool(v)
        case "number": return number(v) != nil
        case "integer": return number(v).map { $0 == $0.rounded() } ?? false
        case "null": return v is NSNull
        default: return false
        }
    }

    static func kind(_ v: Any) -> String {
        for t in ["null", "boolean", "integer", "number", "string", "array", "object"] where matches(v, t) { return t }
        return "unknown"
    }

    static func equal(_ a: Any, _ b: Any) -> Bool {
        if let x = a as? String, let y = b as? String { return x == y }
        if let x = number(a), let y = number(b) { return x == y }
        if isBool(a) && isBool(b) { return (a as? Bool) == (b as? Bool) }
        return a is NSNull && b is NSNull
    }
}
