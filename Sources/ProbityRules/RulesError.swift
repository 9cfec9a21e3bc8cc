// The one error type of ProbityRules: every case carries where (file, line, column) and what was
// expected versus found. A failed lint or compile throws `.invalid` with all diagnostics at once.

/// An error in a rules file or in loading one.
public enum RulesError: Error, CustomStringConvertible, Equatable {
    /// The file could not be read at all.
    case cannotRead(path: String, reason: String)
    /// The document is larger than the loader accepts.
    case documentTooLarge(path: String, bytes: Int, limit: Int)
    /// libyaml rejected the text; `problem` and `context` are libyaml's own words.
    case syntax(FileLocation, problem: String, context: String?)
    /// Collections nested deeper than the limit.
    case nestingTooDeep(FileLocation, limit: Int)
    /// Aliases would expand the document past the node budget (a "billion laughs" document).
    case aliasExpansion(FileLocation, anchor: String, limit: Int)
    /// More nodes than the loader accepts, even without aliases.
    case tooManyNodes(FileLocation, limit: Int)
    /// An alias names an anchor not defined before it.
    case undefinedAlias(FileLocation, anchor: String)
    /// A mapping repeats a key.
    case duplicateKey(FileLocation, key: String, first: FileLocation)
    /// A mapping key that is a sequence or mapping.
    case nonScalarKey(FileLocation)
    /// YAML 1.1 merge keys (`<<`), which YAML 1.2 dropped and we do not expand.
    case mergeKey(FileLocation)
    /// A tag other than the core schema's (`!!str`, `!!int`, `!!float`, `!!bool`, `!!null`, `!!seq`, `!!map`).
    case unsupportedTag(FileLocation, tag: String)
    /// A core tag on a value that is not of that type, like `!!int abc`.
    case tagMismatch(FileLocation, tag: String, found: String)
    /// More than one YAML document in a rules file.
    case multipleDocuments(FileLocation)
    /// A value of the wrong type: "expected a number, found string 'abc'".
    case type(FileLocation, expected: String, found: String)
    /// Everything wrong with a set of rule files, found in one pass.
    case invalid([Diagnostic])

    /// Where the error is, for single errors.
    public var location: FileLocation? {
        switch self {
        case let .cannotRead(path, _), let .documentTooLarge(path, _, _): return .file(path)
        case let .syntax(l, _, _), let .nestingTooDeep(l, _), let .aliasExpansion(l, _, _), let .tooManyNodes(l, _),
             let .undefinedAlias(l, _), let .duplicateKey(l, _, _), let .nonScalarKey(l), let .mergeKey(l),
             let .unsupportedTag(l, _), let .tagMismatch(l, _, _), let .multipleDocuments(l), let .type(l, _, _):
            return l
        case .invalid: return nil
        }
    }

    /// The message without its location.
    public var message: String {
        switch self {
        case let .cannotRead(_, reason):
            return "cannot read rules file: \(reason)"
        case let .documentTooLarge(_, bytes, limit):
            return "document is \(bytes) bytes; rules files are limited to \(limit) bytes"
        case let .syntax(_, problem, context):
            return "YAML syntax: \(problem)" + (context.map { " (\($0))" } ?? "")
        case let .nestingTooDeep(_, limit):
            return "YAML nesting deeper than \(limit) levels"
        case let .aliasExpansion(_, anchor, limit):
            return "alias '*\(anchor)' expands the document past \(limit) nodes (exponential alias expansion?)"
        case let .tooManyNodes(_, limit):
            return "document has more than \(limit) nodes"
        case let .undefinedAlias(_, anchor):
            return "alias '*\(anchor)' refers to no anchor defined before it"
        case let .duplicateKey(_, key, first):
            return "duplicate key '\(key)' (first at line \(first.line), column \(first.column))"
        case .nonScalarKey:
            return "mapping keys must be scalars, not sequences or mappings"
        case .mergeKey:
            return "merge keys ('<<') are not supported; write the keys out or use an alias for the whole value"
        case let .unsupportedTag(_, tag):
            return "unsupported tag '\(tag)' (only !!str, !!int, !!float, !!bool, !!null, !!seq and !!map)"
        case let .tagMismatch(_, tag, found):
            return "value tagged '\(tag)' is \(found)"
        case .multipleDocuments:
            return "a rules file holds one YAML document; found a second"
        case let .type(_, expected, found):
            return "expected \(expected), found \(found)"
        case let .invalid(diagnostics):
            let errors = diagnostics.count { $0.severity == .error }
            return "\(errors) error\(errors == 1 ? "" : "s") in rules"
        }
    }

    /// The error as diagnostics (one, or all of `.invalid`).
    public var diagnostics: [Diagnostic] {
        if case let .invalid(all) = self { return all }
        return [Diagnostic(.error, message, at: location ?? .file("<rules>"))]
    }

    public var description: String {
        if case let .invalid(all) = self {
            var collected = Diagnostics()
            for d in all {
                if d.severity == .error { collected.error(d.message, at: d.location, hint: d.hint) }
                else { collected.warning(d.message, at: d.location, hint: d.hint) }
            }
            return collected.rendered()
        }
        return "\(location.map { "\($0)" } ?? "<rules>"): \(message)"
    }
}
