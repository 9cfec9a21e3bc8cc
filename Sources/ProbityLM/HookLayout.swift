// The dense numbering of a model's hook points, defined once: `hook_embed`, each block's points in
// forward order, `ln_final.hook_normalized`. Hook tables, partial passes and validation all use it.

/// Slot numbers of the hook points of a model with `blocks` blocks: slot 0 is `hook_embed`, block L's
/// points take `perBlock` slots from `1 + perBlock·L` in forward order, the last is the final norm.
struct HookLayout: Sendable, Equatable {
    /// Hook points per block: resid_pre, attn_out, resid_mid, mlp_out, resid_post.
    static let perBlock = HookPoint.points(ofBlock: 0).count

    let blocks: Int

    /// Slots in all: embed, the blocks', final.
    var count: Int { 2 + Self.perBlock * blocks }

    /// The slot of `ln_final.hook_normalized`, the last.
    var finalSlot: Int { 1 + Self.perBlock * blocks }

    /// The slot of `point`, or nil when the model has no such block.
    func slot(_ point: HookPoint) -> Int? {
        switch point {
        case .embed: return 0
        case .finalNormalized: return finalSlot
        case .residPre(let l), .attnOut(let l), .residMid(let l), .mlpOut(let l), .residPost(let l):
            guard l >= 0, l < blocks, let k = point.offsetInBlock else { return nil }
            return 1 + Self.perBlock * l + k
        }
    }

    /// Every point in slot order.
    var points: [HookPoint] {
        var points: [HookPoint] = [.embed]
        points.reserveCapacity(count)
        for l in 0..<blocks { points += HookPoint.points(ofBlock: l) }
        points.append(.finalNormalized)
        return points
    }

    /// The blocks a pass stopping after `slot` must run: none for the embedding, every block for
    /// the final norm.
    func blocks(through slot: Int) -> Range<Int> {
        slot <= 0 ? 0..<0 : 0..<min((slot - 1) / Self.perBlock + 1, blocks)
    }
}

extension HookPoint {
    /// A block's points in forward order (the order of `blockSuffixes`).
    static func points(ofBlock l: Int) -> [HookPoint] {
        [.residPre(l), .attnOut(l), .residMid(l), .mlpOut(l), .residPost(l)]
    }

    /// This point's place among its block's points (0 ..< `HookLayout.perBlock`), nil outside a block.
    var offsetInBlock: Int? {
        switch self {
        case .embed, .finalNormalized: return nil
        case .residPre: return 0
        case .attnOut: return 1
        case .residMid: return 2
        case .mlpOut: return 3
        case .residPost: return 4
        }
    }
}
