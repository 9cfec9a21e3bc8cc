// Hooks: functions attached at named hook points that read and may edit activations in place.
// Nothing happens at a point until something is attached (TransformerLens hook_points.py idea);
// with nothing attached the forward pass pays one branch per point.

import ProbityTensor

/// Where a position's token came from.
public enum TokenOrigin: Sendable, Equatable {
    case prompt
    case generated
}

/// The activations at one hook point for the positions of one forward step: `count` rows of
/// `width` floats, row-major. Hooks may edit `values` in place.
public struct HookActivations {
    public let point: HookPoint
    /// Floats per position (the model width, d_model).
    public let width: Int
    /// Positions in this step (all prompt positions of a prefill chunk, or one during decode).
    public let count: Int
    /// `count × width` activations, row-major.
    public let values: UnsafeMutablePointer<Float>
    /// Absolute positions of the rows, contiguous.
    public let positions: Range<Int>
    /// Where the step these rows belong to ends: `positions.upperBound`, except for the first part
    /// of a prompt run in two calls as one step (`InferenceSession.forward(…, stepEnd:)`: a shared
    /// prefix, then each fork's rest), whose rows see the end of the whole step. A filter such as
    /// "the last N positions" counts from here.
    public let stepEnd: Int
    /// Token id of each row.
    public let tokens: ArraySlice<Int>
    /// Whether each row's token is from the prompt or generated.
    public let origins: ArraySlice<TokenOrigin>
    /// Identifies these activations: every hook at this point in this step sees the same value,
    /// and no other step or point does, so work derived from them (an SAE's encoding) can be shared.
    public let step: UInt64
    /// The forward pass's thread pool, idle while hooks run: a hook's own kernels may use it.
    public let pool: ThreadPool?

    /// `step` nil takes a new number (`HookActivations.nextStep()`); `stepEnd` nil is
    /// `positions.upperBound`.
    public init(point: HookPoint, width: Int, count: Int, values: UnsafeMutablePointer<Float>, positions: Range<Int>,
                tokens: ArraySlice<Int>, origins: ArraySlice<TokenOrigin>, step: UInt64? = nil, pool: ThreadPool? = nil,
                stepEnd: Int? = nil) {
        self.point = point
        self.width = width
        self.count = count
        self.values = values
        self.positions = positions
        self.stepEnd = max(stepEnd ?? positions.upperBound, positions.upperBound)
        self.tokens = tokens
        self.origins = origins
        self.step = step ?? Self.nextStep()
        self.pool = pool
    }

    /// A number no earlier call returned (process-wide).
    public static func nextStep() -> UInt64 { SerialNumber.next() }

    /// Row `i` (0 ..< count) as a mutable buffer of `width` floats.
    public func row(_ i: Int) -> UnsafeMutableBufferPointer<Float> {
        precondition(i >= 0 && i < count, "row \(i) outside 0..<\(count)")
        return UnsafeMutableBufferPointer(start: values + i * width, count: width)
    }
}

/// A hook: called with the activations of the positions being processed.
public typealias Hook = (HookActivations) -> Void

/// The hooks attached to a forward pass, by point. Attach once, run many steps.
public final class HookSet {
    private var byPoint: [HookPoint: [Hook]] = [:]
    private var order: [HookPoint] = []
    // Dense table for the forward pass, rebuilt only when hooks change or the block count differs.
    private var table: [[Hook]?] = []
    private var tableBlocks = -1

    public init() {}

    /// Attaches `hook` at `point`; hooks at one point run in the order attached.
    public func attach(at point: HookPoint, _ hook: @escaping Hook) {
        if byPoint[point] == nil { order.append(point) }
        byPoint[point, default: []].append(hook)
        tableBlocks = -1
    }

    /// Every point with at least one hook, in the order first attached.
    public var points: [HookPoint] { order }

    public var isEmpty: Bool { order.isEmpty }

    /// The dense slot table for a model with `blocks` blocks. Throws if a hook is attached at a
    /// point the model does not have: a missing hook point is an error, never a silent skip.
    func slots(blocks: Int) throws -> [[Hook]?] {
        if tableBlocks == blocks { return table }
        let layout = HookLayout(blocks: blocks)
        var t = [[Hook]?](repeating: nil, count: layout.count)
        for point in order {
            guard let s = layout.slot(point) else {
                throw ModelError.unknownHookPoint(point.name, blocks: blocks)
            }
            t[s] = byPoint[point]
        }
        table = t
        tableBlocks = blocks
        return t
    }
}

extension HookSet {
    /// One set that calls, at each point, the hooks of `sets` in their order: several runs'
    /// recorders reading one shared pass (a prompt run once for several continuations). Each hook
    /// sees what the ones before it left, so the sets must not edit where the others read.
    public static func merging(_ sets: [HookSet]) -> HookSet {
        let merged = HookSet()
        for set in sets {
            for point in set.order {
                for hook in set.byPoint[point] ?? [] { merged.attach(at: point, hook) }
            }
        }
        return merged
    }
}
