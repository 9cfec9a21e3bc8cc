// `--shard auto`: the shard a job system hands a run, read from its environment (docs/audits.md,
// "Shards across machines"). Probity's own variables come first, then Kubernetes Indexed Jobs' index.

/// Where `--shard auto` finds its shard. The index comes from `PROBITY_SHARD_INDEX` (1-based; a
/// GitHub Actions matrix value passed through `env:`), else from `JOB_COMPLETION_INDEX` (0-based;
/// Kubernetes sets it in every pod of an Indexed Job). The count always comes from
/// `PROBITY_SHARD_COUNT`: Kubernetes does not tell a pod its Job's completions.
public enum ShardEnvironment {
    /// The shard's number, 1-based.
    public static let indexVariable = "PROBITY_SHARD_INDEX"
    /// The number of shards, with either index.
    public static let countVariable = "PROBITY_SHARD_COUNT"
    /// Kubernetes Indexed Jobs' completion index, 0-based.
    public static let kubernetesIndexVariable = "JOB_COMPLETION_INDEX"

    /// A shard resolved from the environment.
    public struct Resolved: Sendable, Equatable {
        /// Shard `index` of `count`, 1-based like `--shard I/N`.
        public var index: Int, count: Int
        /// The variables it came from, as they were set, e.g.
        /// `JOB_COMPLETION_INDEX=2 (0-based) and PROBITY_SHARD_COUNT=4`.
        public var source: String

        public init(index: Int, count: Int, source: String) {
            (self.index, self.count, self.source) = (index, count, source)
        }
    }

    /// The shard `environment` names; a missing, non-numeric or out-of-range value is an error
    /// naming its variable.
    public static func resolve(_ environment: [String: String]) throws(AuditError) -> Resolved {
        let variable: String, text: String, zeroBased: Bool
        if let value = environment[indexVariable] {
            (variable, text, zeroBased) = (indexVariable, value, false)
        } else if let value = environment[kubernetesIndexVariable] {
            (variable, text, zeroBased) = (kubernetesIndexVariable, value, true)
        } else {
            throw .badShardEnvironment(
                variable: "\(indexVariable) or \(kubernetesIndexVariable)",
                expected: "the shard's index in \(indexVariable) (1-based) or \(kubernetesIndexVariable) (0-based, set by Kubernetes Indexed Jobs)",
                found: "neither set")
        }
        let first = zeroBased ? 0 : 1
        guard let raw = wholeNumber(text) else {
            throw .badShardEnvironment(variable: variable, expected: "a whole number (the shard's index, \(first)-based)",
                                       found: "'\(text)'")
        }
        guard let countText = environment[countVariable] else {
            throw .badShardEnvironment(
                variable: countVariable,
                expected: "the number of shards, a whole number ≥ 1, next to \(variable)"
                    + (zeroBased ? " (Kubernetes does not pass a Job's completions to its pods: set it to the same number)" : ""),
                found: "nothing (unset)")
        }
        guard let count = wholeNumber(countText), count >= 1 else {
            throw .badShardEnvironment(variable: countVariable, expected: "the number of shards, a whole number ≥ 1",
                                       found: "'\(countText)'")
        }
        guard raw >= first, raw <= count - 1 + first else {
            throw .badShardEnvironment(variable: variable,
                                       expected: "\(first) to \(count - 1 + first) (\(first)-based, with \(countVariable)=\(countText))",
                                       found: "'\(text)'")
        }
        var source = "\(variable)=\(text)" + (zeroBased ? " (0-based)" : "") + " and \(countVariable)=\(countText)"
        if !zeroBased, let ignored = environment[kubernetesIndexVariable] {
            source += " (\(kubernetesIndexVariable)=\(ignored) ignored: \(indexVariable) comes first)"
        }
        return Resolved(index: zeroBased ? raw + 1 : raw, count: count, source: source)
    }

    /// Decimal digits only (no sign, no spaces) that fit an Int.
    private static func wholeNumber(_ text: String) -> Int? {
        guard !text.isEmpty, text.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }) else { return nil }
        return Int(text)
    }
}
