// A rule's measured validity (docs/eval.md): how well its score separated its concept on held-out
// labelled data, and how often it fired on benign exchanges, as `probity eval` measured them. A
// rule of severity medium or higher without one is a lint warning: its findings are unmeasured.

/// What `probity eval` measured for a rule, recorded in its file as `validity:`.
public struct RuleValidity: Sendable, Equatable {
    /// AUROC of its score, positives against every negative (benign included).
    public var auroc: Double
    /// True- and false-positive rates at its threshold, and its rate on benign items.
    public var tpr: Double
    public var fpr: Double
    public var benignFPR: Double
    /// The SHA-256 eval printed for the data it was measured on.
    public var data: String
    /// Items it was measured on.
    public var n: Int
    /// The threshold the rates were measured at, when it was chosen on calibration data
    /// (`probity eval --calibrate`), and that calibration data's SHA-256.
    public var threshold: Double?
    public var calibration: String?
    public var location: FileLocation

    public init(auroc: Double, tpr: Double, fpr: Double, benignFPR: Double, data: String, n: Int,
                threshold: Double? = nil, calibration: String? = nil, location: FileLocation) {
        self.auroc = auroc
        self.tpr = tpr
        self.fpr = fpr
        self.benignFPR = benignFPR
        self.data = data
        self.n = n
        self.threshold = threshold
        self.calibration = calibration
        self.location = location
    }

    /// The lowest severity whose rules must record a validity.
    public static let requiredFrom = RuleSeverity.medium

    /// The keys of a `validity:` mapping, in the order eval prints them.
    public static let keys = ["auroc", "tpr", "fpr", "benign_fpr", "data", "n", "threshold", "calibration"]
}

extension RuleParser {
    /// `validity: {auroc, tpr, fpr, benign_fpr, data, n, threshold?, calibration?}`: rates in [0, 1],
    /// `data` a SHA-256 in hex, `n` at least 1; `threshold` (a number) and `calibration` (the
    /// calibration data's SHA-256) together or not at all.
    func parseValidity(_ node: YAMLNode, context: String, into diagnostics: inout Diagnostics) -> RuleValidity? {
        let context = "\(context): validity"
        guard var fields = Fields(node, context: context, into: &diagnostics) else { return nil }
        func rate(_ key: String) -> Double? {
            guard let value = fields.read(key, required: true, into: &diagnostics, { n throws(RulesError) in try n.number() }) else { return nil }
            guard value >= 0 && value <= 1 else {
                diagnostics.error("\(context): '\(key)' must be between 0 and 1, found \(value)", at: node[key]?.location ?? node.location)
                return nil
            }
            return value
        }
        let auroc = rate("auroc"), tpr = rate("tpr"), fpr = rate("fpr"), benign = rate("benign_fpr")
        func digest(_ key: String, required: Bool) -> String? {
            let value = fields.read(key, required: required, into: &diagnostics) { n throws(RulesError) in try n.string() }
            if let value, value.count != 64 || !value.allSatisfy({ $0.isHexDigit && !$0.isUppercase }) {
                diagnostics.error("\(context): '\(key)' must be the SHA-256 `probity eval` prints (64 lowercase hex digits), found '\(value)'",
                                  at: node[key]?.location ?? node.location)
                return nil
            }
            return value
        }
        let data = digest("data", required: true)
        let threshold = fields.read("threshold", into: &diagnostics) { n throws(RulesError) in try n.number() }
        let calibration = digest("calibration", required: false)
        if (node["threshold"] == nil) != (node["calibration"] == nil) {
            diagnostics.error("\(context): 'threshold' and 'calibration' go together (the calibrated threshold and the digest of the data that chose it)",
                              at: node.location)
        }
        let n = fields.read("n", required: true, into: &diagnostics) { n throws(RulesError) in try n.int() }
        if let n, n < 1 { diagnostics.error("\(context): 'n' must be at least 1, found \(n)", at: node["n"]?.location ?? node.location) }
        fields.finish(into: &diagnostics)
        guard let auroc, let tpr, let fpr, let benign, let data, let n, n >= 1 else { return nil }
        return RuleValidity(auroc: auroc, tpr: tpr, fpr: fpr, benignFPR: benign, data: data, n: n, threshold: threshold,
                            calibration: calibration, location: node.location)
    }
}

extension RuleSet {
    /// A warning per rule of severity medium or higher that records no validity: a CI gate on it
    /// would gate on an unmeasured instrument (docs/eval.md).
    public func checkValidity(into diagnostics: inout Diagnostics) {
        for rule in rules where rule.severity >= RuleValidity.requiredFrom && rule.validity == nil {
            diagnostics.warning("rule '\(rule.id)' (severity \(rule.severity.rawValue)) records no validity: its findings are unmeasured",
                                at: rule.location,
                                hint: "measure it with `probity eval` on held-out labelled data and record `validity:` (docs/eval.md), or lower its severity to low or info")
        }
    }
}
