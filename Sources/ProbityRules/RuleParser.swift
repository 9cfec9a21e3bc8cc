// Turns a loaded YAML tree into the rule model, checking everything that needs no pack or model:
// types, required and unknown keys, enumerations, ranges, threshold syntax, triggers, test shape,
// hook name syntax. Every problem becomes a diagnostic; parsing goes on to find the rest.

import Foundation
import ProbityFeatures
import ProbityLM

/// The rules file schema versions this build reads.
public let supportedSchemaVersions = [1]

/// Parses rules files with a registry of actions and detectors.
public struct RuleParser: Sendable {
    public var registry: PluginRegistry

    public init(registry: PluginRegistry = .standard) {
        self.registry = registry
    }

    /// Loads and parses one file. Returns nil when it cannot be loaded or its top level is unusable;
    /// otherwise returns what could be parsed (rules with errors are left out).
    public func parse(file path: String, limits: YAMLLimits = .standard, into diagnostics: inout Diagnostics) -> RuleFile? {
        do {
            let root = try YAML.load(file: path, limits: limits)
            return parse(root, file: path, into: &diagnostics)
        } catch {
            diagnostics.record(error)
            return nil
        }
    }

    /// Parses a loaded document whose nodes say they come from `file`.
    public func parse(_ root: YAMLNode, file: String, into diagnostics: inout Diagnostics) -> RuleFile? {
        if root.isNull {
            diagnostics.error("empty rules file (expected schema_version, packs and rules)", at: root.location)
            return nil
        }
        guard var top = Fields(root, context: "rules file", into: &diagnostics) else { return nil }
        var version: Int?
        if let node = top.required("schema_version", into: &diagnostics) {
            do {
                let v = try node.int()
                if supportedSchemaVersions.contains(v) { version = v } else {
                    diagnostics.error("schema_version \(v) is not supported (this build reads \(supportedSchemaVersions.map(String.init).joined(separator: ", ")))",
                                      at: node.location)
                }
            } catch {
                diagnostics.error("schema_version: \(error.message)", at: node.location)
            }
        }
        let packs = top.optional("packs").map { parsePacks($0, file: file, into: &diagnostics) } ?? []
        var rules: [Rule] = []
        if let node = top.required("rules", into: &diagnostics) {
            do {
                let items = try node.sequence()
                if items.isEmpty { diagnostics.warning("the file holds no rules", at: node.location) }
                var seen: [String: FileLocation] = [:]
                for item in items {
                    guard let rule = parseRule(item, packs: packs, into: &diagnostics) else { continue }
                    if let first = seen[rule.id] {
                        diagnostics.error("duplicate rule id '\(rule.id)' (first at \(first))", at: rule.idLocation)
                        continue
                    }
                    seen[rule.id] = rule.idLocation
                    rules.append(rule)
                }
            } catch {
                diagnostics.error("rules: \(error.message)", at: node.location)
            }
        }
        top.finish(into: &diagnostics)
        return RuleFile(path: file, schemaVersion: version ?? 1, packs: packs, rules: rules)
    }

    // MARK: packs

    private func parsePacks(_ node: YAMLNode, file: String, into diagnostics: inout Diagnostics) -> [PackDeclaration] {
        let items: [YAMLNode]
        do { items = try node.sequence() } catch {
            diagnostics.error("packs: \(error.message)", at: node.location)
            return []
        }
        let directory = (file as NSString).deletingLastPathComponent
        var packs: [PackDeclaration] = []
        for item in items {
            guard var fields = Fields(item, context: "pack", into: &diagnostics) else { continue }
            let name = fields.read("name", required: true, into: &diagnostics) { n throws(RulesError) in try n.string() }
            let path = fields.read("path", required: true, into: &diagnostics) { n throws(RulesError) in try n.string() }
            let pathNode = fields.optional("path")
            fields.finish(into: &diagnostics)
            guard let name, let path, let pathNode else { continue }
            guard isIdentifier(name) else {
                diagnostics.error("pack name '\(name)' must start with a letter or digit and hold only letters, digits, '.', '_' and '-'",
                                  at: item["name"]?.location ?? item.location)
                continue
            }
            if let first = packs.first(where: { $0.name == name }) {
                diagnostics.error("pack '\(name)' is declared twice (first at \(first.location))", at: item.location)
                continue
            }
            let resolved = path.hasPrefix("/") || directory.isEmpty ? path : directory + "/" + path
            packs.append(PackDeclaration(name: name, path: path, resolvedPath: normalizePath(resolved),
                                         location: item.location, pathLocation: pathNode.location))
        }
        return packs
    }

    // MARK: rules

    private func parseRule(_ node: YAMLNode, packs: [PackDeclaration], into diagnostics: inout Diagnostics) -> Rule? {
        let idText = (try? node["id"]?.string()) ?? nil
        let context = idText.map { "rule '\($0)'" } ?? "rule"
        guard var fields = Fields(node, context: context, into: &diagnostics) else { return nil }
        let before = diagnostics.errorCount

        let id = fields.read("id", required: true, into: &diagnostics) { n throws(RulesError) in try n.string() }
        if let id, !isIdentifier(id) {
            diagnostics.error("rule id '\(id)' must start with a letter or digit and hold only letters, digits, '.', '_' and '-'",
                              at: node["id"]?.location ?? node.location)
        }
        let description = fields.read("description", required: true, into: &diagnostics) { n throws(RulesError) in try n.string() }
        let severity = fields.choice("severity", among: RuleSeverity.allCases.map(\.rawValue), required: true, into: &diagnostics)
        let tags = fields.read("tags", into: &diagnostics) { n throws(RulesError) in try n.sequence().map { i throws(RulesError) in try i.string() } } ?? []
        let watch = fields.required("watch", into: &diagnostics).flatMap { parseWatch($0, context: context, packs: packs, into: &diagnostics) }
        let detector = fields.required("detect", into: &diagnostics).flatMap { parseDetector($0, context: context, into: &diagnostics) }
        var interventions: [RuleIntervention] = []
        if let node = fields.optional("intervene") {
            do {
                let items = try node.sequence()
                if items.isEmpty { diagnostics.warning("\(context): 'intervene' is empty, so the rule intervenes on nothing", at: node.location) }
                for item in items {
                    if let i = parseIntervention(item, context: context, packs: packs, into: &diagnostics) { interventions.append(i) }
                }
            } catch {
                diagnostics.error("\(context): 'intervene': \(error.message)", at: node.location)
            }
        }
        let stop = fields.read("stop", into: &diagnostics) { n throws(RulesError) in try n.bool() } ?? false
        let effectTokens = fields.optional("effects").map { parseEffects($0, context: context, into: &diagnostics) } ?? []
        let validity = fields.optional("validity").flatMap { parseValidity($0, context: context, into: &diagnostics) }
        if let measured = validity?.threshold, let t = (detector as? ThresholdDetector)?.threshold,
           case .absolute(let shipped) = t, Float(shipped) != Float(measured) {
            diagnostics.error("\(context): validity was measured at threshold \(measured) (calibrated), but 'detect.threshold' is \(shipped): "
                              + "set the threshold to the calibrated one, or record the validity measured at \(shipped)",
                              at: node["validity"]?["threshold"]?.location ?? node.location)
        }
        var tests: [RuleTest] = []
        if let node = fields.optional("tests") {
            do {
                for item in try node.sequence() {
                    if let t = parseTest(item, context: context, into: &diagnostics) { tests.append(t) }
                }
            } catch {
                diagnostics.error("\(context): 'tests': \(error.message)", at: node.location)
            }
        }
        fields.finish(into: &diagnostics)

        guard diagnostics.errorCount == before, let id, let description, let severity,
              let severityValue = RuleSeverity(rawValue: severity), let watch, let detector else { return nil }
        if let reason = detector.neverFiresReason {
            diagnostics.warning("\(context) can never fire: \(reason)", at: node["detect"]?.location ?? node.location)
        }
        if !effectTokens.isEmpty && interventions.isEmpty {
            diagnostics.warning("\(context): 'effects' names tokens but the rule does not intervene, so no effect is measured",
                                at: node["effects"]?.location ?? node.location)
        }
        for intervention in interventions {
            if let reason = intervention.action.noOpReason {
                diagnostics.warning("\(context): this action intervenes on nothing: \(reason)", at: intervention.location)
            }
        }
        return Rule(id: id, description: description, severity: severityValue, tags: tags, watch: watch,
                    detector: detector, interventions: interventions, stop: stop, effectTokens: effectTokens, validity: validity, tests: tests,
                    location: node.location, idLocation: node["id"]?.location ?? node.location)
    }

    /// `{tokens: [S, ...]}`: the tokens whose logits an audit follows. Whether each is one token of
    /// the model's vocabulary is checked when compiling against the model.
    private func parseEffects(_ node: YAMLNode, context: String, into diagnostics: inout Diagnostics) -> [EffectToken] {
        guard var fields = Fields(node, context: "\(context): effects", into: &diagnostics) else { return [] }
        var out: [EffectToken] = []
        if let list = fields.required("tokens", into: &diagnostics) {
            do {
                let items = try list.sequence()
                if items.isEmpty { diagnostics.error("\(context): effects: 'tokens' is empty", at: list.location) }
                for item in items {
                    do {
                        let text = try item.string()
                        if text.isEmpty {
                            diagnostics.error("\(context): effects: a token cannot be empty", at: item.location)
                        } else if let first = out.first(where: { $0.text == text }) {
                            diagnostics.warning("\(context): effects: token \(quotedToken(text)) is listed twice (first at \(first.location))",
                                                at: item.location)
                        } else {
                            out.append(EffectToken(text: text, location: item.location))
                        }
                    } catch {
                        diagnostics.error("\(context): effects: 'tokens': \(error.message)", at: item.location)
                    }
                }
            } catch {
                diagnostics.error("\(context): effects: 'tokens': \(error.message)", at: list.location)
            }
        }
        fields.finish(into: &diagnostics)
        return out
    }

    /// A single feature reference, or `{any: [...]}` / `{all: [...]}`.
    private func parseWatch(_ node: YAMLNode, context: String, packs: [PackDeclaration],
                            into diagnostics: inout Diagnostics) -> Watch? {
        guard case .mapping = node.content else {
            diagnostics.error("\(context): 'watch' must be a feature or {any: [...]} / {all: [...]}; found \(node.found)", at: node.location)
            return nil
        }
        let hasAny = node["any"] != nil, hasAll = node["all"] != nil
        guard hasAny || hasAll else {
            return parseFeature(node, context: "\(context): watch", packs: packs, into: &diagnostics)
                .map { Watch(combine: .any, features: [$0]) }
        }
        guard var fields = Fields(node, context: "\(context): watch", into: &diagnostics) else { return nil }
        if hasAny && hasAll {
            diagnostics.error("\(context): 'watch' takes 'any' or 'all', not both", at: node.location)
        }
        let key = hasAll ? "all" : "any"
        let items = fields.read(key, into: &diagnostics) { n throws(RulesError) in try n.sequence() }
        _ = fields.optional(hasAll ? "any" : "all")
        fields.finish(into: &diagnostics)
        guard let items, !(hasAny && hasAll) else { return nil }
        if items.isEmpty {
            diagnostics.error("\(context): 'watch.\(key)' lists no features", at: node[key]?.location ?? node.location)
            return nil
        }
        var features: [FeatureReference] = []
        var failed = false
        for item in items {
            if let f = parseFeature(item, context: "\(context): watch.\(key)", packs: packs, into: &diagnostics) {
                if features.contains(where: { $0.pack == f.pack && $0.selector == f.selector && $0.hook == f.hook }) {
                    diagnostics.warning("\(context): \(f) is listed twice", at: f.location)
                }
                features.append(f)
            } else { failed = true }
        }
        return failed ? nil : Watch(combine: Watch.Combine(rawValue: key) ?? .any, features: features)
    }

    /// `{pack: P, latent: N}`, `{pack: P, label: NAME}`, `{pack: P, direction: NAME}`, `{pack: P,
    /// probe: NAME}`, each with an optional `hook`. `pack` may be left out when the file declares exactly one.
    func parseFeature(_ node: YAMLNode, context: String, packs: [PackDeclaration],
                      into diagnostics: inout Diagnostics) -> FeatureReference? {
        guard var fields = Fields(node, context: context, into: &diagnostics) else { return nil }
        let before = diagnostics.errorCount
        let packName = fields.read("pack", into: &diagnostics) { n throws(RulesError) in try n.string() }
        let latent = fields.read("latent", into: &diagnostics) { n throws(RulesError) in try n.int() }
        let label = fields.read("label", into: &diagnostics) { n throws(RulesError) in try n.string() }
        let direction = fields.read("direction", into: &diagnostics) { n throws(RulesError) in try n.string() }
        let probe = fields.read("probe", into: &diagnostics) { n throws(RulesError) in try n.string() }
        let hookName = fields.read("hook", into: &diagnostics) { n throws(RulesError) in try n.string() }
        fields.finish(into: &diagnostics)

        let given = ["latent", "label", "direction", "probe"].filter { node[$0] != nil }
        if given.isEmpty {
            diagnostics.error("\(context): a feature needs one of 'latent', 'label', 'direction' or 'probe'", at: node.location)
        } else if given.count > 1 {
            diagnostics.error("\(context): a feature takes one of 'latent', 'label', 'direction' or 'probe', found \(given.map { "'\($0)'" }.joined(separator: " and "))",
                              at: node.location)
        }
        if let latent, latent < 0 {
            diagnostics.error("\(context): 'latent' must be a non-negative index, found \(latent)", at: node["latent"]?.location ?? node.location)
        }
        // The one place a rule's hook name is read: from here on it is a `HookPoint`.
        let hook = hookName.flatMap(HookPoint.init(name:))
        if let hookName, hook == nil {
            diagnostics.error("\(context): '\(hookName)' is not a hook point name (expected hook_embed, blocks.L.hook_{resid_pre,attn_out,resid_mid,mlp_out,resid_post} or ln_final.hook_normalized)",
                              at: node["hook"]?.location ?? node.location)
        }
        var pack: String?
        if let packName {
            if packs.contains(where: { $0.name == packName }) { pack = packName } else {
                let declared = packs.map(\.name)
                diagnostics.error("\(context): pack '\(packName)' is not declared in this file's 'packs'"
                                  + (declared.isEmpty ? "" : " (declared: \(declared.joined(separator: ", ")))"),
                                  at: node["pack"]?.location ?? node.location,
                                  hint: closest(to: packName, in: declared).map { "did you mean '\($0)'?" })
            }
        } else if packs.count == 1 {
            pack = packs[0].name
        } else if before == diagnostics.errorCount {
            diagnostics.error("\(context): 'pack' is required when the file declares \(packs.isEmpty ? "no packs" : "\(packs.count) packs")",
                              at: node.location)
        }
        guard diagnostics.errorCount == before, let pack, let key = given.first,
              let selectorNode = node[key] else { return nil }
        let selector: FeatureReference.Selector
        if let latent { selector = .latent(latent) } else if let label { selector = .label(label) }
        else if let direction { selector = .direction(direction) } else if let probe { selector = .probe(probe) } else { return nil }
        return FeatureReference(pack: pack, selector: selector, hook: hook, location: node.location,
                                selectorLocation: selectorNode.location, hookLocation: node["hook"]?.location)
    }

    private func parseDetector(_ node: YAMLNode, context: String, into diagnostics: inout Diagnostics) -> (any Detector)? {
        guard var fields = Fields(node, context: "\(context): detect", into: &diagnostics) else { return nil }
        let kind = fields.read("kind", into: &diagnostics) { n throws(RulesError) in try n.string() } ?? ThresholdDetector.kind
        guard let type = registry.detectors[kind] else {
            let known = registry.detectorKinds
            diagnostics.error("\(context): unknown detector kind '\(kind)' (registered: \(known.joined(separator: ", ")))",
                              at: node["kind"]?.location ?? node.location,
                              hint: closest(to: kind, in: known).map { "did you mean '\($0)'?" })
            return nil
        }
        let detector = type.init(fields: &fields, diagnostics: &diagnostics)
        fields.finish(into: &diagnostics)
        return detector
    }

    private func parseIntervention(_ node: YAMLNode, context: String, packs: [PackDeclaration],
                                   into diagnostics: inout Diagnostics) -> RuleIntervention? {
        let name = (try? node["action"]?.string()) ?? nil
        let here = "\(context): \(name ?? "action")"
        guard var fields = Fields(node, context: here, into: &diagnostics) else { return nil }
        let before = diagnostics.errorCount
        guard let name = fields.read("action", required: true, into: &diagnostics, { n throws(RulesError) in try n.string() }) else {
            return nil
        }
        guard let type = registry.actions[name] else {
            let known = registry.actionNames
            diagnostics.error("\(context): unknown action '\(name)' (registered: \(known.joined(separator: ", ")))",
                              at: node["action"]?.location ?? node.location,
                              hint: closest(to: name, in: known).map { "did you mean '\($0)'?" })
            return nil
        }
        let target = fields.optional("feature").flatMap { parseFeature($0, context: "\(here): feature", packs: packs, into: &diagnostics) }
        let trigger = fields.required("trigger", into: &diagnostics).flatMap { parseTrigger($0, context: here, packs: packs, into: &diagnostics) }
        let positions = fields.optional("positions").flatMap { ThresholdDetector.parseScope($0, context: "\(here): positions", into: &diagnostics) }
        var arguments = YAMLActionArguments(fields: fields, diagnostics: diagnostics)
        let action = type.init(arguments: &arguments)
        fields = arguments.fields
        diagnostics = arguments.diagnostics
        fields.finish(into: &diagnostics)
        guard diagnostics.errorCount == before, let action, let trigger else { return nil }
        return RuleIntervention(action: action, target: target, trigger: trigger, positions: positions ?? .all, location: node.location)
    }

    /// `always`, `after_fire`, or `{while: {feature: REF, threshold: T}}`.
    private func parseTrigger(_ node: YAMLNode, context: String, packs: [PackDeclaration],
                              into diagnostics: inout Diagnostics) -> RuleTrigger? {
        let names = ["always", "after_fire", "while"]
        if let text = try? node.string() {
            switch text {
            case "always": return .always
            case "after_fire": return .afterFire
            default:
                diagnostics.error("\(context): 'trigger' must be always, after_fire or {while: ...}; found '\(text)'",
                                  at: node.location, hint: closest(to: text, in: names).map { "did you mean '\($0)'?" })
                return nil
            }
        }
        guard case .mapping = node.content, var outer = Fields(node, context: "\(context): trigger", into: &diagnostics) else {
            diagnostics.error("\(context): 'trigger' must be always, after_fire or {while: ...}; found \(node.found)", at: node.location)
            return nil
        }
        let inner = outer.required("while", into: &diagnostics)
        outer.finish(into: &diagnostics)
        guard let inner, var fields = Fields(inner, context: "\(context): trigger.while", into: &diagnostics) else { return nil }
        let feature = fields.required("feature", into: &diagnostics)
            .flatMap { parseFeature($0, context: "\(context): trigger.while.feature", packs: packs, into: &diagnostics) }
        let threshold = fields.required("threshold", into: &diagnostics)
            .flatMap { Threshold.parse($0, what: "\(context): trigger.while: 'threshold'", into: &diagnostics) }
        fields.finish(into: &diagnostics)
        guard let feature, let threshold else { return nil }
        return .whileActive(feature, threshold)
    }

    private func parseTest(_ node: YAMLNode, context: String, into diagnostics: inout Diagnostics) -> RuleTest? {
        guard var fields = Fields(node, context: "\(context): test", into: &diagnostics) else { return nil }
        let before = diagnostics.errorCount
        let name = fields.read("name", into: &diagnostics) { n throws(RulesError) in try n.string() }
        let prompt = fields.read("prompt", into: &diagnostics) { n throws(RulesError) in try n.string() }
        var messages: [ChatMessage]?
        if let node = fields.optional("messages") {
            messages = parseMessages(node, context: "\(context): test", into: &diagnostics)
        }
        let expect = fields.choice("expect", among: ["fires", "silent"], required: true, into: &diagnostics)
        let maxTokens = fields.read("max_tokens", into: &diagnostics) { n throws(RulesError) in try n.int() }
        if let maxTokens, maxTokens < 1 {
            diagnostics.error("\(context): test: 'max_tokens' must be at least 1, found \(maxTokens)", at: node["max_tokens"]?.location ?? node.location)
        }
        var contains: [String] = [], excludes: [String] = []
        if let output = fields.optional("output"), var o = Fields(output, context: "\(context): test output", into: &diagnostics) {
            contains = o.read("contains", into: &diagnostics, Self.stringOrList) ?? []
            excludes = o.read("excludes", into: &diagnostics, Self.stringOrList) ?? []
            o.finish(into: &diagnostics)
            if contains.isEmpty && excludes.isEmpty {
                diagnostics.error("\(context): test 'output' needs 'contains' or 'excludes'", at: output.location)
            }
        }
        fields.finish(into: &diagnostics)
        if (prompt == nil) == (messages == nil) && node["prompt"] == nil && node["messages"] == nil {
            diagnostics.error("\(context): a test needs 'prompt' or 'messages'", at: node.location)
        } else if node["prompt"] != nil && node["messages"] != nil {
            diagnostics.error("\(context): a test takes 'prompt' or 'messages', not both", at: node.location)
        }
        guard diagnostics.errorCount == before, let expect, let expectation = RuleTest.Expectation(rawValue: expect) else { return nil }
        let input: RuleTest.Input
        if let prompt { input = .prompt(prompt) } else if let messages { input = .messages(messages) } else { return nil }
        return RuleTest(name: name, input: input, expect: expectation, outputContains: contains, outputExcludes: excludes,
                        maxTokens: maxTokens, location: node.location)
    }

    private static func stringOrList(_ node: YAMLNode) throws(RulesError) -> [String] {
        if case .sequence(let items) = node.content { return try items.map { i throws(RulesError) in try i.string() } }
        do { return [try node.string()] } catch {
            throw .type(node.location, expected: "a string or a list of strings", found: node.found)
        }
    }

    private func parseMessages(_ node: YAMLNode, context: String, into diagnostics: inout Diagnostics) -> [ChatMessage]? {
        let items: [YAMLNode]
        do { items = try node.sequence() } catch {
            diagnostics.error("\(context): 'messages': \(error.message)", at: node.location)
            return nil
        }
        if items.isEmpty {
            diagnostics.error("\(context): 'messages' is empty", at: node.location)
            return nil
        }
        var messages: [ChatMessage] = []
        for item in items {
            guard var fields = Fields(item, context: "\(context): message", into: &diagnostics) else { continue }
            let role = fields.choice("role", among: ChatMessage.Role.allCases.map(\.rawValue), required: true, into: &diagnostics)
                .flatMap(ChatMessage.Role.init(rawValue:))
            let content = fields.read("content", required: true, into: &diagnostics) { n throws(RulesError) in try n.string() }
            fields.finish(into: &diagnostics)
            if let role, let content { messages.append(ChatMessage(role: role, content: content)) }
        }
        return messages.count == items.count ? messages : nil
    }
}

/// A token's text in double quotes with `\`, `"` and control characters escaped, so a leading
/// space shows: `" Yes"`.
func quotedToken(_ text: String) -> String {
    var out = "\""
    for ch in text.unicodeScalars {
        switch ch {
        case "\\": out += "\\\\"
        case "\"": out += "\\\""
        case "\n": out += "\\n"
        case "\t": out += "\\t"
        default:
            if ch.value < 0x20 { out += "\\u{\(String(ch.value, radix: 16))}" } else { out.unicodeScalars.append(ch) }
        }
    }
    return out + "\""
}

/// Ids and pack names: a letter or digit, then letters, digits, `.`, `_`, `-`.
func isIdentifier(_ text: String) -> Bool {
    guard let first = text.unicodeScalars.first, first.isASCII, first.properties.isAlphabetic || ("0"..."9").contains(first) else {
        return false
    }
    return text.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || "._-".unicodeScalars.contains($0)) }
}

/// Collapses `.` and `name/..` components without touching the file system, so messages show
/// `rules/../packs/x` as `packs/x`.
func normalizePath(_ path: String) -> String {
    let absolute = path.hasPrefix("/")
    var parts: [Substring] = []
    for part in path.split(separator: "/") {
        if part == "." { continue }
        if part == "..", let last = parts.last, last != ".." {
            parts.removeLast()
        } else if part == "..", absolute {
            continue
        } else {
            parts.append(part)
        }
    }
    let joined = parts.joined(separator: "/")
    return absolute ? "/" + joined : (joined.isEmpty ? "." : joined)
}
