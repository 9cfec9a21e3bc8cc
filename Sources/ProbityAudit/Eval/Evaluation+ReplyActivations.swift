// The activations a probe is trained on: each labelled item run exactly as `probity eval` runs it
// (Evaluation.teacherForce), its response's activations at several hook points pooled in one pass.
// Mean pooling matches a rule's `scope: response` with `aggregate: mean` on a probe's logit.

import ProbityLM

/// How a response's per-token activations become one vector.
public enum ReplyPooling: String, Sendable, CaseIterable {
    /// The mean over the response's tokens.
    case mean
    /// The response's last token.
    case last
}

/// The response activations of labelled items: pooled for every item, per token for some.
public struct ReplyActivations: Sendable {
    /// `pooled[item][pooling][point]`: a vector of the model's width.
    public var pooled: [[[[Double]]]]
    /// `tokens[item][point]`: the response's rows, in order, for the items asked for.
    public var tokens: [Int: [[[Float]]]]
}

extension Evaluation {
    /// Per item, per pooling in `poolings`, per hook point in `points`: the response's activations
    /// pooled, summed in Double, all from one pass per item; and for the items in `keepTokens`, every
    /// response token's activations. An item whose response has no tokens is an error naming its line.
    public static func replyActivations(items: [EvalItem], points: [HookPoint], poolings: [ReplyPooling],
                                        keepTokens: Set<Int> = [], loaded: LoadedModel, chatFormat: String,
                                        progress: (EvalProgress) -> Void = { _ in }) throws -> ReplyActivations {
        for p in points { try loaded.model.info.validate(p) }
        let width = loaded.model.info.width
        var out: [[[[Double]]]] = []
        var kept: [Int: [[[Float]]]] = [:]
        out.reserveCapacity(items.count)
        try teacherForce(items: items, loaded: loaded, chatFormat: chatFormat, progress: progress) { n, _ in
            let zero = [Double](repeating: 0, count: width)
            var sums = [[Double]](repeating: zero, count: points.count)
            var last = [[Double]](repeating: zero, count: points.count)
            var counts = [Int](repeating: 0, count: points.count)
            var rows = [[[Float]]](repeating: [], count: points.count)
            let keep = keepTokens.contains(n)
            let hooks = HookSet()
            for (k, point) in points.enumerated() {
                hooks.attach(at: point) { acts in
                    for (r, origin) in acts.origins.enumerated() where origin == .generated {
                        let row = acts.values + r * acts.width
                        for j in 0..<width {
                            sums[k][j] += Double(row[j])
                            last[k][j] = Double(row[j])
                        }
                        counts[k] += 1
                        if keep { rows[k].append(Array(UnsafeBufferPointer(start: row, count: width))) }
                    }
                }
            }
            return (hooks, {
                let item = items[n]
                guard let c = counts.first, c > 0 else {
                    throw AuditError.data(path: item.file, line: item.line,
                                          reason: "item '\(item.id)': the response has no tokens, so there is nothing to pool")
                }
                if keep { kept[n] = rows }
                out.append(poolings.map { pooling in
                    switch pooling {
                    case .mean: return zip(sums, counts).map { s, c in s.map { $0 / Double(c) } }
                    case .last: return last
                    }
                })
            })
        }
        return ReplyActivations(pooled: out, tokens: kept)
    }
}
