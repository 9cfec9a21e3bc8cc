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

extension Evaluation {
    /// Per item, per hook point in `points`: the response's activations pooled by `pooling`, summed
    /// in Double. An item whose response has no tokens is an error naming its line.
    public static func replyActivations(items: [EvalItem], points: [HookPoint], pooling: ReplyPooling,
                                        loaded: LoadedModel, chatFormat: String,
                                        progress: (EvalProgress) -> Void = { _ in }) throws -> [[[Double]]] {
        for p in points { try loaded.model.info.validate(p) }
        let width = loaded.model.info.width
        var out: [[[Double]]] = []
        out.reserveCapacity(items.count)
        try teacherForce(items: items, loaded: loaded, chatFormat: chatFormat, progress: progress) { n, _ in
            var sums = [[Double]](repeating: [Double](repeating: 0, count: width), count: points.count)
            var counts = [Int](repeating: 0, count: points.count)
            let hooks = HookSet()
            for (k, point) in points.enumerated() {
                hooks.attach(at: point) { acts in
                    for (r, origin) in acts.origins.enumerated() where origin == .generated {
                        let row = acts.values + r * acts.width
                        if pooling == .last {
                            for j in 0..<width { sums[k][j] = Double(row[j]) }
                            counts[k] = 1
                        } else {
                            for j in 0..<width { sums[k][j] += Double(row[j]) }
                            counts[k] += 1
                        }
                    }
                }
            }
            return (hooks, {
                let item = items[n]
                guard let c = counts.first, c > 0 else {
                    throw AuditError.data(path: item.file, line: item.line,
                                          reason: "item '\(item.id)': the response has no tokens, so there is nothing to pool")
                }
                out.append(zip(sums, counts).map { s, c in s.map { $0 / Double(c) } })
            })
        }
        return out
    }
}
