// An `intervene` item's keys as an action's arguments: the action asks for its values by key, and
// wrong types, missing keys and malformed levels become diagnostics at their line and column.

import ProbityFeatures

/// The keys of one `intervene` item, read for an action through `Fields`.
struct YAMLActionArguments: ActionArguments {
    var fields: Fields
    var diagnostics: Diagnostics

    mutating func number(_ key: String, required: Bool) -> Double? {
        fields.read(key, required: required, into: &diagnostics) { n throws(RulesError) in try n.number() }
    }

    mutating func level(_ key: String, required: Bool) -> Level? {
        let node = required ? fields.required(key, into: &diagnostics) : fields.optional(key)
        return node.flatMap { Threshold.parse($0, what: "\(fields.context): '\(key)'", into: &diagnostics) }
    }
}
