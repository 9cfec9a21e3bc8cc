// Named hook points, with TransformerLens's names (contract, docs/DESIGN.md "Hook points"),
// because published SAEs are keyed by them (SAELens `hook_name`).

/// A place in the forward pass where hooks may read and edit activations.
public enum HookPoint: Hashable, Sendable, CustomStringConvertible {
    /// Token embeddings (`hook_embed`).
    case embed
    /// Residual stream entering block L (`blocks.L.hook_resid_pre`).
    case residPre(Int)
    /// Attention output after the output projection, before the residual add (`blocks.L.hook_attn_out`).
    case attnOut(Int)
    /// Residual after attention (`blocks.L.hook_resid_mid`).
    case residMid(Int)
    /// MLP output before the residual add (`blocks.L.hook_mlp_out`).
    case mlpOut(Int)
    /// Residual leaving block L (`blocks.L.hook_resid_post`).
    case residPost(Int)
    /// After the final norm (`ln_final.hook_normalized`).
    case finalNormalized

    /// The TransformerLens name, e.g. `blocks.15.hook_resid_post`.
    public var name: String {
        switch self {
        case .embed: return "hook_embed"
        case .residPre(let l): return "blocks.\(l).hook_resid_pre"
        case .attnOut(let l): return "blocks.\(l).hook_attn_out"
        case .residMid(let l): return "blocks.\(l).hook_resid_mid"
        case .mlpOut(let l): return "blocks.\(l).hook_mlp_out"
        case .residPost(let l): return "blocks.\(l).hook_resid_post"
        case .finalNormalized: return "ln_final.hook_normalized"
        }
    }

    public var description: String { name }

    /// The block this point belongs to, or nil for `hook_embed` and `ln_final.hook_normalized`.
    public var block: Int? {
        switch self {
        case .embed, .finalNormalized: return nil
        case .residPre(let l), .attnOut(let l), .residMid(let l), .mlpOut(let l), .residPost(let l): return l
        }
    }

    /// Parses a TransformerLens hook name. Returns nil when the text is not a hook name at all;
    /// whether the model has that block is checked against the model (`HookPoint.all(blocks:)`).
    public init?(name: String) {
        switch name {
        case "hook_embed": self = .embed; return
        case "ln_final.hook_normalized": self = .finalNormalized; return
        default: break
        }
        let parts = name.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0] == "blocks", let l = Int(parts[1]), l >= 0,
              String(l) == parts[1] else { return nil }
        switch parts[2] {
        case "hook_resid_pre": self = .residPre(l)
        case "hook_attn_out": self = .attnOut(l)
        case "hook_resid_mid": self = .residMid(l)
        case "hook_mlp_out": self = .mlpOut(l)
        case "hook_resid_post": self = .residPost(l)
        default: return nil
        }
    }

    /// Every hook point of a model with `blocks` blocks, in forward order.
    public static func all(blocks: Int) -> [HookPoint] { HookLayout(blocks: blocks).points }

    /// Dense index of this point in `all(blocks:)`, used for constant-time lookup in the forward pass.
    func slot(blocks: Int) -> Int? { HookLayout(blocks: blocks).slot(self) }
}
