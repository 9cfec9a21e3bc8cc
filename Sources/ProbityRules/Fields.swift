// Reads the keys of one YAML mapping into typed values, collecting every problem as a diagnostic
// instead of stopping at the first. Keys nobody asked for are reported at the end with a
// `did you mean` hint drawn from the keys that were asked for.

/// The keys of one mapping, read one by one; call `finish` to report the keys left unread.
public struct Fields {
    /// The mapping node (its location is where "missing key" errors point).
    public let node: YAMLNode
    /// What the mapping is, for messages: "rule 'x'", "detect", "pack".
    public let context: String
    private let pairs: [YAMLPair]
    private var requested: [String] = []
    /// Required keys that were absent while a near miss of them was present: reported as "unknown
    /// key, did you mean" by `finish`, or as missing if the near miss turns out to be a known key.
    private var nearMisses: [(key: String, location: FileLocation)] = []

    /// Fields of `node`; nil (with an error recorded) when `node` is not a mapping.
    public init?(_ node: YAMLNode, context: String, into diagnostics: inout Diagnostics) {
        guard case .mapping(let pairs) = node.content else {
            diagnostics.error("\(context): expected a mapping, found \(node.found)", at: node.location)
            return nil
        }
        self.node = node
        self.context = context
        self.pairs = pairs
    }

    /// The keys present, in document order.
    public var keys: [String] { pairs.compactMap { $0.key.scalar?.text } }

    public func has(_ key: String) -> Bool { pairs.contains { $0.key.scalar?.text == key } }

    /// The value of `key`, or nil. Marks the key as known.
    public mutating func optional(_ key: String) -> YAMLNode? {
        requested.append(key)
        return pairs.first { $0.key.scalar?.text == key }?.value
    }

    /// The value of `key`; records "missing key" when absent.
    public mutating func required(_ key: String, into diagnostics: inout Diagnostics) -> YAMLNode? {
        guard let value = optional(key) else {
            if keys.contains(where: { $0 != key && closest(to: $0, in: [key]) != nil }) {
                nearMisses.append((key, node.location))
            } else {
                diagnostics.error("\(context): missing required key '\(key)'", at: node.location)
            }
            return nil
        }
        return value
    }

    /// Reads `key` with a typed accessor; a wrong type is recorded and gives nil.
    public mutating func read<T>(_ key: String, required isRequired: Bool = false, into diagnostics: inout Diagnostics,
                                 _ accessor: (YAMLNode) throws(RulesError) -> T) -> T? {
        let value = isRequired ? required(key, into: &diagnostics) : optional(key)
        guard let value else { return nil }
        do {
            return try accessor(value)
        } catch {
            diagnostics.error("\(context): '\(key)': \(error.message)", at: value.location)
            return nil
        }
    }

    /// Reads `key` as one of `choices`, with a hint when the value is a near miss.
    public mutating func choice(_ key: String, among choices: [String], required isRequired: Bool = false,
                                into diagnostics: inout Diagnostics) -> String? {
        guard let text = read(key, required: isRequired, into: &diagnostics, { n throws(RulesError) in try n.string() }),
              let value = optional(key) else { return nil }
        guard choices.contains(text) else {
            diagnostics.error("\(context): '\(key)' must be one of \(choices.joined(separator: ", ")); found '\(text)'",
                              at: value.location, hint: closest(to: text, in: choices).map { "did you mean '\($0)'?" })
            return nil
        }
        return text
    }

    /// Reports every key that no read asked for.
    public func finish(into diagnostics: inout Diagnostics) {
        for miss in nearMisses where !keys.contains(where: { !requested.contains($0) && closest(to: $0, in: [miss.key]) != nil }) {
            diagnostics.error("\(context): missing required key '\(miss.key)'", at: miss.location)
        }
        for pair in pairs {
            guard let key = pair.key.scalar?.text, !requested.contains(key) else { continue }
            let known = Array(Set(requested)).sorted()
            let hint = closest(to: key, in: known).map { "did you mean '\($0)'?" }
                ?? "expected one of: \(known.joined(separator: ", "))"
            diagnostics.error("\(context): unknown key '\(key)'", at: pair.key.location, hint: hint)
        }
    }
}
