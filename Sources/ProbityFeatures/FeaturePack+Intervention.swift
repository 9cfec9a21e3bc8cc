// Feature edits written as `steer` flags: `--clamp gold=1.5x`, `--add caa-sycophancy=-4`,
// `--ablate 12`. The action comes from the action registry and reads its value from the flag
// with the same level parser rules use.

extension FeaturePack {
    /// The feature's max activation from the labels (the unit of `Nx` values).
    public func maxActivation(_ target: FeatureTarget) -> Float? {
        switch target {
        case .latent(_, let i): return labels[latent: i]?.maxActivation
        case .direction(let d): return labels[d.name]?.maxActivation
        case .probe(let p): return labels[p.name]?.maxActivation
        }
    }

    /// Parses a command-line edit: `clamp F=V`, `scale F=X`, `ablate F`, `cap F=V`, `add F=A`,
    /// `project_out F` (F a latent index, label or direction name; a level V may be `Nx`), the
    /// action looked up by name in `registry` (`project-out` is `project_out`). `flag` is how the
    /// user wrote the edit, for messages about its shape (default `--ACTION`).
    public func intervention(_ action: String, _ argument: String, registry: ActionRegistry = .standard,
                             flag: String? = nil) throws -> Intervention {
        guard let type = registry.action(commandLineName: action) else {
            throw FeatureError.badAction(argument: argument, reason: "unknown action '\(action)'")
        }
        let parts = argument.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        var arguments = FlagArguments(value: parts.count == 2 ? parts[1] : nil)
        let parsed = type.init(arguments: &arguments)
        let feature = parts.first ?? ""
        // The flag's shape first, then the feature, then the value: as a reader checks them.
        if feature.isEmpty || arguments.missing || (arguments.value != nil && !arguments.asked) {
            let takesValue = arguments.missing || arguments.asked
            let flag = flag ?? "--\(action)"
            throw FeatureError.badAction(argument: argument, reason: takesValue ? "expected FEATURE=VALUE for \(flag)" : "expected FEATURE for \(flag)")
        }
        let target = try self.feature(feature)
        if let problem = arguments.problem { throw FeatureError.badAction(argument: argument, reason: problem) }
        guard let parsed else { throw FeatureError.badAction(argument: argument, reason: "cannot build --\(action) from '\(argument)'") }
        let max = maxActivation(target).map(Double.init)
        for level in parsed.values where level.isRelative && max == nil {
            if case .latent(_, let i) = target { throw FeatureError.noMaxActivation(pack: name, index: i) }
            throw FeatureError.badAction(argument: argument,
                                         reason: "direction has no max activation in the labels, so '\(arguments.value ?? "\(level)")' has no meaning")
        }
        let resolved = parsed.resolved { $0.value(maxActivation: max) ?? 0 }
        return Intervention(target, resolved)
    }
}

/// A flag's `=V` as an action's arguments: every key the action asks for reads the one value.
struct FlagArguments: ActionArguments {
    /// The text after `=`, if the flag has one.
    let value: String?
    /// Whether the action asked for a value, and one it required was absent.
    private(set) var asked = false
    private(set) var missing = false
    /// What was wrong with the value, as a reason for `FeatureError.badAction`.
    private(set) var problem: String?

    init(value: String?) { self.value = value }

    mutating func number(_ key: String, required: Bool) -> Double? {
        guard let text = take(required: required) else { return nil }
        if case .absolute(let v)? = Level.parse(text) { return v }
        problem = problem ?? "expected a number, found '\(text)'"
        return nil
    }

    mutating func level(_ key: String, required: Bool) -> Level? {
        guard let text = take(required: required) else { return nil }
        if let level = Level.parse(text) { return level }
        problem = problem ?? "expected a number or Nx (N times the feature's max activation), found '\(text)'"
        return nil
    }

    private mutating func take(required: Bool) -> String? {
        asked = true
        if value == nil && required { missing = true }
        return value
    }
}
