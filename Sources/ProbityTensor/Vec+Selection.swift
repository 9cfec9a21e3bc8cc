// Partial selection: the k largest values without sorting the whole vector (top logits, the most
// active SAE latents).

extension Vec {
    /// Indices of the `k` largest values, largest first (ties: lower index first).
    /// - Complexity: O(n·k) worst case, O(n) when few values beat the current k-th.
    public static func topIndices(_ values: UnsafeBufferPointer<Float>, k: Int) -> [Int] {
        guard k > 0 else { return [] }
        var best: [Int] = []
        best.reserveCapacity(k + 1)
        for i in values.indices {
            if best.count == k, let last = best.last, values[i] <= values[last] { continue }
            var j = best.count
            while j > 0 && values[best[j - 1]] < values[i] { j -= 1 }
            best.insert(i, at: j)
            if best.count > k { best.removeLast() }
        }
        return best
    }
}
