// Loads one YAML document into located nodes through libyaml's event API (pyyaml's composer does
// the same job over the same events). Strict and bounded: duplicate keys, undefined aliases and
// unsupported tags are errors; size, nesting depth and alias expansion have limits.

import CYAML
import Foundation

/// Bounds that keep a hostile or broken document from eating time or memory.
public struct YAMLLimits: Sendable, Equatable {
    /// Largest document, in bytes.
    public var maxBytes: Int
    /// Deepest nesting of sequences and mappings.
    public var maxDepth: Int
    /// Most nodes, counting every alias as the full size of the node it repeats, which is what a
    /// consumer walking the tree would visit. A "billion laughs" document hits this after a few
    /// thousand events instead of expanding.
    public var maxNodes: Int

    public init(maxBytes: Int = 1 << 20, maxDepth: Int = 64, maxNodes: Int = 250_000) {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
        self.maxNodes = maxNodes
    }

    public static let standard = YAMLLimits()
}

/// Entry points of the YAML loader.
public enum YAML {
    /// Reads and loads the document in `path`. An empty document is a null node at 1:1.
    public static func load(file path: String, limits: YAMLLimits = .standard) throws(RulesError) -> YAMLNode {
        let bytes = try read(path, limit: limits.maxBytes)
        return try load(bytes, file: path, limits: limits)
    }

    /// Loads `text` as if it were the contents of `file` (used in locations only).
    public static func load(_ text: String, file: String, limits: YAMLLimits = .standard) throws(RulesError) -> YAMLNode {
        try load(Array(text.utf8), file: file, limits: limits)
    }

    /// Loads UTF-8 (or UTF-16 with a byte order mark, as libyaml detects) bytes.
    public static func load(_ bytes: [UInt8], file: String, limits: YAMLLimits = .standard) throws(RulesError) -> YAMLNode {
        guard bytes.count <= limits.maxBytes else {
            throw .documentTooLarge(path: file, bytes: bytes.count, limit: limits.maxBytes)
        }
        var composer = Composer(file: file, limits: limits, bytes: bytes)
        return try composer.run()
    }

    /// Reads at most `limit + 1` bytes, so a huge file is refused without reading it all.
    static func read(_ path: String, limit: Int) throws(RulesError) -> [UInt8] {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .cannotRead(path: path, reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw .cannotRead(path: path, reason: "is a directory") }
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw .cannotRead(path: path, reason: "permission denied")
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: limit + 1) ?? Data()
        } catch {
            throw .cannotRead(path: path, reason: "\(error.localizedDescription)")
        }
        guard data.count <= limit else {
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? data.count
            throw .documentTooLarge(path: path, bytes: size, limit: limit)
        }
        return [UInt8](data)
    }
}

private let coreTag = "tag:yaml.org,2002:"

/// Builds the tree from libyaml events with an explicit stack (no recursion, so depth is ours to bound).
private struct Composer {
    let file: String
    let limits: YAMLLimits
    let bytes: [UInt8]

    /// A collection being built. A class so appending does not copy the array held in the stack.
    final class Frame {
        let location: FileLocation
        let anchor: String?
        let isMapping: Bool
        var items: [YAMLNode] = []
        var pairs: [YAMLPair] = []
        var pendingKey: YAMLNode?
        var seenKeys: [String: FileLocation] = [:]
        /// Nodes under this one, counting aliases at their expanded size.
        var weight = 1

        init(location: FileLocation, anchor: String?, isMapping: Bool) {
            self.location = location
            self.anchor = anchor
            self.isMapping = isMapping
        }
    }

    var stack: [Frame] = []
    var anchors: [String: (node: YAMLNode, weight: Int)] = [:]
    var total = 0
    var root: YAMLNode?
    var documents = 0

    init(file: String, limits: YAMLLimits, bytes: [UInt8]) {
        self.file = file
        self.limits = limits
        self.bytes = bytes
    }

    mutating func run() throws(RulesError) -> YAMLNode {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw .syntax(.file(file), problem: "libyaml could not allocate a parser", context: nil)
        }
        defer { yaml_parser_delete(&parser) }
        let result: Result<YAMLNode, RulesError> = bytes.withUnsafeBufferPointer { buffer in
            // libyaml reads from the buffer until the end; a zero-length input needs a valid pointer too.
            var empty: UInt8 = 0
            if let base = buffer.baseAddress, buffer.count > 0 {
                yaml_parser_set_input_string(&parser, base, buffer.count)
            } else {
                yaml_parser_set_input_string(&parser, &empty, 0)
            }
            do throws(RulesError) {
                return .success(try events(&parser))
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }

    private func mark(_ m: yaml_mark_t) -> FileLocation {
        FileLocation(file: file, line: m.line + 1, column: m.column + 1)
    }

    private mutating func events(_ parser: inout yaml_parser_t) throws(RulesError) -> YAMLNode {
        var event = yaml_event_t()
        while true {
            guard yaml_parser_parse(&parser, &event) == 1 else { throw syntaxError(parser) }
            defer { yaml_event_delete(&event) }
            let at = mark(event.start_mark)
            switch event.type {
            case YAML_STREAM_END_EVENT:
                return root ?? YAMLNode(.scalar(YAMLScalar(text: "", kind: .null)),
                                        at: FileLocation(file: file, line: 1, column: 1))
            case YAML_DOCUMENT_START_EVENT:
                documents += 1
                if documents > 1 { throw .multipleDocuments(at) }
            case YAML_SCALAR_EVENT:
                let s = event.data.scalar
                let text = string(s.value, length: s.length)
                let tag = s.tag.map { String(cString: $0) }
                let plain = s.style == YAML_PLAIN_SCALAR_STYLE
                let scalar = try resolve(text, plain: plain, tag: tag, at: at)
                let node = YAMLNode(.scalar(scalar), at: at)
                try count(1, at: at, alias: nil)
                try add(node, weight: 1, plainText: plain && tag == nil ? text : nil)
                if let anchor = s.anchor.map({ String(cString: $0) }) { anchors[anchor] = (node, 1) }
            case YAML_SEQUENCE_START_EVENT, YAML_MAPPING_START_EVENT:
                let isMapping = event.type == YAML_MAPPING_START_EVENT
                guard stack.count < limits.maxDepth else { throw .nestingTooDeep(at, limit: limits.maxDepth) }
                let rawTag = isMapping ? event.data.mapping_start.tag : event.data.sequence_start.tag
                if let tag = rawTag.map({ String(cString: $0) }), tag != coreTag + (isMapping ? "map" : "seq") {
                    throw .unsupportedTag(at, tag: shortTag(tag))
                }
                let rawAnchor = isMapping ? event.data.mapping_start.anchor : event.data.sequence_start.anchor
                stack.append(Frame(location: at, anchor: rawAnchor.map { String(cString: $0) }, isMapping: isMapping))
                try count(1, at: at, alias: nil)
            case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
                guard let frame = stack.popLast() else { continue }
                let node = YAMLNode(frame.isMapping ? .mapping(frame.pairs) : .sequence(frame.items), at: frame.location)
                if let anchor = frame.anchor { anchors[anchor] = (node, frame.weight) }
                try add(node, weight: frame.weight, plainText: nil)
            case YAML_ALIAS_EVENT:
                let name = String(cString: event.data.alias.anchor)
                guard let target = anchors[name] else { throw .undefinedAlias(at, anchor: name) }
                try count(target.weight, at: at, alias: name)
                try add(target.node, weight: target.weight, plainText: nil)
            default:
                break
            }
        }
    }

    private mutating func count(_ n: Int, at: FileLocation, alias: String?) throws(RulesError) {
        total += n
        guard total <= limits.maxNodes else {
            if let alias { throw .aliasExpansion(at, anchor: alias, limit: limits.maxNodes) }
            throw .tooManyNodes(at, limit: limits.maxNodes)
        }
    }

    /// Attaches a finished node to the collection being built, or makes it the root.
    private mutating func add(_ node: YAMLNode, weight: Int, plainText: String?) throws(RulesError) {
        guard let frame = stack.last else {
            root = node
            return
        }
        frame.weight += weight
        guard frame.isMapping else {
            frame.items.append(node)
            return
        }
        if let key = frame.pendingKey {
            frame.pairs.append(YAMLPair(key: key, value: node))
            frame.pendingKey = nil
            return
        }
        guard let key = node.scalar else { throw .nonScalarKey(node.location) }
        if plainText == "<<" { throw .mergeKey(node.location) }
        if let first = frame.seenKeys[key.text] {
            throw .duplicateKey(node.location, key: key.text, first: first)
        }
        frame.seenKeys[key.text] = node.location
        frame.pendingKey = node
    }

    private func resolve(_ text: String, plain: Bool, tag: String?, at: FileLocation) throws(RulesError) -> YAMLScalar {
        guard let tag, tag != "!" else {
            return plain && tag == nil ? YAMLScalar.resolvePlain(text) : YAMLScalar(text: text, kind: .string)
        }
        guard tag.hasPrefix(coreTag) else { throw .unsupportedTag(at, tag: tag) }
        let resolved = YAMLScalar.resolvePlain(text)
        switch tag.dropFirst(coreTag.count) {
        case "str":
            return YAMLScalar(text: text, kind: .string)
        case "null":
            if resolved.kind == .null { return resolved }
        case "bool":
            if case .bool = resolved.kind { return resolved }
        case "int":
            if case .int = resolved.kind { return resolved }
        case "float":
            if case .float = resolved.kind { return resolved }
            if case .int(let v) = resolved.kind { return YAMLScalar(text: text, kind: .float(Double(v))) }
        default:
            throw .unsupportedTag(at, tag: shortTag(tag))
        }
        let node = YAMLNode(.scalar(resolved), at: at)
        throw .tagMismatch(at, tag: shortTag(tag), found: node.found)
    }

    private func shortTag(_ tag: String) -> String {
        tag.hasPrefix(coreTag) ? "!!" + tag.dropFirst(coreTag.count) : tag
    }

    private func string(_ pointer: UnsafeMutablePointer<yaml_char_t>?, length: Int) -> String {
        guard let pointer else { return "" }
        return String(decoding: UnsafeBufferPointer(start: pointer, count: length), as: UTF8.self)
    }

    /// libyaml's own message and mark. Reader errors (bad encoding) carry a byte offset instead of
    /// a mark, so their line and column are counted here.
    private func syntaxError(_ parser: yaml_parser_t) -> RulesError {
        let problem = parser.problem.map { String(cString: $0) } ?? "unknown error"
        switch parser.error {
        case YAML_READER_ERROR:
            let offset = min(parser.problem_offset, bytes.count)
            var line = 1, column = 1
            for b in bytes[..<offset] {
                if b == UInt8(ascii: "\n") { line += 1; column = 1 } else if b & 0xC0 != 0x80 { column += 1 }
            }
            let detail = parser.problem_value >= 0 ? " (byte 0x\(String(parser.problem_value, radix: 16)))" : ""
            return .syntax(FileLocation(file: file, line: line, column: column), problem: problem + detail, context: nil)
        case YAML_MEMORY_ERROR:
            return .syntax(.file(file), problem: "libyaml ran out of memory", context: nil)
        default:
            var context: String?
            if let c = parser.context {
                let cm = parser.context_mark
                context = "\(String(cString: c)) at line \(cm.line + 1), column \(cm.column + 1)"
            }
            return .syntax(mark(parser.problem_mark), problem: problem, context: context)
        }
    }
}
