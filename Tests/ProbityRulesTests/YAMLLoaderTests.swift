// The YAML loader: located nodes, strict scalars, duplicate keys, limits and libyaml's errors.

import Testing
@testable import ProbityRules

private func load(_ text: String, limits: YAMLLimits = .standard) throws(RulesError) -> YAMLNode {
    try YAML.load(text, file: "t.yaml", limits: limits)
}

private func at(_ line: Int, _ column: Int) -> FileLocation {
    FileLocation(file: "t.yaml", line: line, column: column)
}

/// The error a load throws, or nil when it loads.
private func loadError(_ text: String, limits: YAMLLimits = .standard) -> RulesError? {
    do {
        _ = try load(text, limits: limits)
        return nil
    } catch {
        return error
    }
}

@Suite struct YAMLLoaderTests {
    @Test func nodesCarryTheirLocations() throws {
        let root = try load("""
            a: 1
            list:
              - x
              -   y: true
            """)
        #expect(root.location == at(1, 1))
        let pairs = try root.mapping()
        #expect(pairs.map(\.key.scalar?.text) == ["a", "list"])
        #expect(pairs[0].value.location == at(1, 4))
        let list = try pairs[1].value.sequence()
        #expect(list[0].location == at(3, 5))
        #expect(list[1].location == at(4, 7))
        #expect(try list[1]["y"]?.bool() == true)
        #expect(list[1]["y"]?.location == at(4, 10))
    }

    @Test func scalarsResolveStrictly() throws {
        let cases: [(String, YAMLScalar.Kind)] = [
            ("true", .bool(true)), ("false", .bool(false)),
            ("yes", .string), ("no", .string), ("on", .string), ("off", .string), ("True", .string),
            ("null", .null), ("~", .null), ("", .null), ("NULL", .string),
            ("0", .int(0)), ("42", .int(42)), ("-7", .int(-7)), ("+3", .int(3)),
            ("007", .string), ("0x1F", .string), ("1_000", .string),
            ("0.5", .float(0.5)), ("-1.25", .float(-1.25)), (".5", .float(0.5)), ("1e3", .float(1000)),
            ("2.", .float(2)), ("1e", .string), (".", .string), (".inf", .string), (".nan", .string),
            ("0.3x", .string), ("abc", .string),
            ("99999999999999999999", .float(1e20)),
        ]
        for (text, kind) in cases {
            #expect(YAMLScalar.resolvePlain(text).kind == kind, "\(text)")
        }
    }

    @Test func quotedScalarsAreStrings() throws {
        let root = try load("a: 'true'\nb: \"12\"\nc: !!str 5\nd: !!float 2\ne: !!int 3")
        #expect(try root["a"]?.string() == "true")
        #expect(try root["b"]?.string() == "12")
        #expect(try root["c"]?.string() == "5")
        #expect(try root["d"]?.number() == 2)
        #expect(try root["e"]?.int() == 3)
    }

    @Test func typedAccessorsSayWhatTheyFound() {
        let root = try? load("n: abc\nb: no\ni: 2.5\ns: 12\nm: {x: 1}")
        #expect(throws: RulesError.type(at(1, 4), expected: "a number", found: "string 'abc'")) {
            try root?["n"]?.number()
        }
        #expect(throws: RulesError.type(at(2, 4), expected: "a boolean (true or false)", found: "string 'no'")) {
            try root?["b"]?.bool()
        }
        #expect(throws: RulesError.type(at(3, 4), expected: "an integer", found: "float 2.5")) {
            try root?["i"]?.int()
        }
        #expect(throws: RulesError.type(at(4, 4), expected: "a string", found: "integer 12")) {
            try root?["s"]?.string()
        }
        #expect(throws: RulesError.type(at(5, 4), expected: "a sequence", found: "a mapping")) {
            try root?["m"]?.sequence()
        }
        let e = RulesError.type(at(1, 4), expected: "a number", found: "string 'abc'")
        #expect(e.description == "t.yaml:1:4: expected a number, found string 'abc'")
    }

    @Test func duplicateKeysAreRejected() {
        #expect(loadError("a: 1\nb:\n  c: 2\n  c: 3\n") == .duplicateKey(at(4, 3), key: "c", first: at(3, 3)))
        #expect(loadError("{a: 1, 'a': 2}") == .duplicateKey(at(1, 8), key: "a", first: at(1, 2)))
    }

    @Test func syntaxErrorsCarryLibyamlsMark() {
        let e = loadError("a: 1\nb: [1, 2\nc: 3\n")
        guard case let .syntax(location, problem, context)? = e else {
            Issue.record("expected a syntax error, got \(String(describing: e))")
            return
        }
        #expect(location == at(3, 2))
        #expect(problem == "did not find expected ',' or ']'")
        #expect(context == "while parsing a flow sequence at line 2, column 4")

        #expect(loadError("a: b: c") == .syntax(at(1, 5), problem: "mapping values are not allowed in this context", context: nil))
    }

    @Test func badEncodingIsASyntaxErrorWithAPosition() {
        var bytes = Array("a: 1\nb: ".utf8)
        bytes += [0xFF, 0x0A]
        do {
            _ = try YAML.load(bytes, file: "t.yaml")
            Issue.record("loaded invalid UTF-8")
        } catch {
            guard case let .syntax(location, problem, _) = error else {
                Issue.record("expected a syntax error, got \(error)")
                return
            }
            #expect(location == at(2, 4))
            #expect(problem.contains("invalid leading UTF-8 octet"))
        }
    }

    @Test func aliasesRepeatTheAnchoredNode() throws {
        let root = try load("base: &b {x: 1}\nother: *b\n")
        #expect(try root["other"]?["x"]?.int() == 1)
        #expect(root["other"]?.location == at(1, 7))
    }

    @Test func undefinedAndRecursiveAliasesAreErrors() {
        #expect(loadError("a: *nope") == .undefinedAlias(at(1, 4), anchor: "nope"))
        #expect(loadError("a: &r [1, *r]") == .undefinedAlias(at(1, 11), anchor: "r"))
    }

    /// The expansion limit stops the document early, so it fails fast without a clock to flake on.
    @Test func billionLaughsHitsTheExpansionLimit() {
        var text = "l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        for level in 1...9 {
            let refs = Array(repeating: "*l\(level - 1)", count: 10).joined(separator: ", ")
            text += "l\(level): &l\(level) [\(refs)]\n"
        }
        let e = loadError(text)
        guard case let .aliasExpansion(location, anchor, limit)? = e else {
            Issue.record("expected an alias expansion error, got \(String(describing: e))")
            return
        }
        // Level 5 nodes expand to 111,111 nodes each: the third alias on that line crosses 250,000.
        #expect(location.line == 6)
        #expect(anchor == "l4")
        #expect(limit == 250_000)
    }

    @Test func deepNestingFailsAtTheLimit() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(loadError(deep) == .nestingTooDeep(at(1, 65), limit: 64))
        let ok = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(loadError(ok) == nil)
        let blocks = (0..<5).map { String(repeating: "  ", count: $0) + "k\($0):" }.joined(separator: "\n") + " 1"
        #expect(loadError(blocks, limits: YAMLLimits(maxDepth: 3)) == .nestingTooDeep(at(4, 7), limit: 3))
    }

    @Test func documentSizeIsLimited() {
        let text = "a: " + String(repeating: "x", count: 100)
        #expect(loadError(text, limits: YAMLLimits(maxBytes: 50)) == .documentTooLarge(path: "t.yaml", bytes: 103, limit: 50))
    }

    @Test func nodeCountIsLimitedWithoutAliases() {
        let text = "[" + Array(repeating: "1", count: 100).joined(separator: ",") + "]"
        #expect(loadError(text, limits: YAMLLimits(maxNodes: 50)) == .tooManyNodes(at(1, 100), limit: 50))
    }

    @Test func oneDocumentOnly() {
        #expect(loadError("a: 1\n---\nb: 2\n") == .multipleDocuments(at(2, 1)))
        #expect((try? load(""))?.isNull == true)
        #expect((try? load("# only a comment\n"))?.isNull == true)
    }

    @Test func mergeKeysAndComplexKeysAreRejected() {
        #expect(loadError("base: &b {x: 1}\nd:\n  <<: *b\n") == .mergeKey(at(3, 3)))
        #expect(loadError("? [a, b]\n: 1\n") == .nonScalarKey(at(1, 3)))
    }

    @Test func foreignTagsAreRejected() {
        #expect(loadError("a: !python/object 1") == .unsupportedTag(at(1, 4), tag: "!python/object"))
        #expect(loadError("a: !!int abc") == .tagMismatch(at(1, 4), tag: "!!int", found: "string 'abc'"))
        #expect(loadError("a: !!set {x}") == .unsupportedTag(at(1, 4), tag: "!!set"))
    }

    @Test func missingFileIsNamed() {
        #expect(throws: RulesError.cannotRead(path: "/no/such/rules.yaml", reason: "no such file")) {
            try YAML.load(file: "/no/such/rules.yaml")
        }
    }
}
