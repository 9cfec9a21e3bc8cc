// Interventions and monitors compiled to hooks on a `HookSet`: at each hook point, one encode per
// SAE for all positions of the step (shared through an SAEEncodingCache), then the latent edits
// written back through the decoder, then the direction edits. They run at every forward step.

import ProbityLM

/// Records which SAE latents fired at which positions, with each position's reconstruction error
/// and, per origin (prompt or generated), the running sums for the FVU of those positions.
/// Read-only: it never edits activations, and it sees them before any intervention at its point.
public final class FeatureMonitor {
    /// One position's view through the SAE.
    public struct Record: Sendable {
        public var pack: String
        public var point: HookPoint
        public var position: Int
        public var token: Int
        public var origin: TokenOrigin
        /// Active latents above the monitor's threshold, largest first, at most `top`.
        public var latents: [ActiveLatent]
        /// Number of nonzero latents (the position's L0).
        public var l0: Int
        /// The relative squared error ‖x − x̂‖² / ‖x‖² (`relativeSquaredError`); nil when the
        /// monitor does not reconstruct.
        public var relativeError: Double?
    }

    public let binding: SAEBinding
    public let top: Int
    public let threshold: Float
    /// Whether the monitor reconstructs each position (records carry its error, tallies grow).
    public let reconstructs: Bool
    /// Which positions the tallies count, given the position and its token (nil: all).
    let counts: (@Sendable (_ position: Int, _ token: Int) -> Bool)?
    public private(set) var records: [Record] = []
    /// Running FVU sums over the counted prompt positions seen so far.
    public private(set) var promptTally = ReconstructionTally()
    /// The same over the counted generated positions.
    public private(set) var generatedTally = ReconstructionTally()

    init(binding: SAEBinding, top: Int, threshold: Float, reconstructs: Bool,
         counts: (@Sendable (_ position: Int, _ token: Int) -> Bool)?) {
        self.binding = binding
        self.top = top
        self.threshold = threshold
        self.reconstructs = reconstructs
        self.counts = counts
    }

    func append(_ r: Record) { records.append(r) }

    func tally(_ x: UnsafePointer<Float>, _ xHat: UnsafePointer<Float>, width: Int, position: Int, token: Int, origin: TokenOrigin) {
        if let counts, !counts(position, token) { return }
        switch origin {
        case .prompt: promptTally.add(x, reconstruction: xHat, width: width)
        case .generated: generatedTally.add(x, reconstruction: xHat, width: width)
        }
    }

    func reset() {
        records.removeAll()
        promptTally = ReconstructionTally()
        generatedTally = ReconstructionTally()
    }
}

/// Records a direction's projection x·u (u = d/‖d‖) at every position. Read-only, like
/// `FeatureMonitor`, and it sees the activations before any intervention at its point.
public final class DirectionMonitor {
    /// One position's projection.
    public struct Record: Sendable {
        public var direction: String
        public var point: HookPoint
        public var position: Int
        public var token: Int
        public var origin: TokenOrigin
        public var projection: Float
    }

    public let direction: Direction
    public private(set) var records: [Record] = []

    init(direction: Direction) { self.direction = direction }

    func append(_ r: Record) { records.append(r) }
    func reset() { records.removeAll() }
}

/// Records a probe's logit w·x + b at every position. Read-only, like `DirectionMonitor`.
public final class ProbeMonitor {
    /// One position's logit.
    public struct Record: Sendable {
        public var probe: String
        public var point: HookPoint
        public var position: Int
        public var token: Int
        public var origin: TokenOrigin
        public var value: Float
    }

    public let probe: Probe
    public private(set) var records: [Record] = []

    init(probe: Probe) { self.probe = probe }

    func append(_ r: Record) { records.append(r) }
    func reset() { records.removeAll() }
}

/// A set of interventions and monitors, validated and ready to attach to a `HookSet`.
public final class FeaturePlan {
    private var interventions: [Intervention] = []
    private var monitors: [FeatureMonitor] = []
    private var directionMonitors: [DirectionMonitor] = []
    private var probeMonitors: [ProbeMonitor] = []
    // Per intervention with a `.from` trigger: the first position where its condition held.
    private var firstFired: [Int?] = []
    // Per intervention with a `.whileActive` trigger: where its condition held in the current step.
    private var holding: [(positions: Range<Int>, rows: [Bool])?] = []
    /// How many positions each intervention (in the order added) has edited.
    public private(set) var applications: [Int] = []
    /// The positions each intervention has edited, in the order edited.
    public private(set) var appliedPositions: [[Int]] = []
    /// Whether the interventions only decide: each is judged at every position as it would be
    /// (trigger, gate, positions, the action's own condition) and counted in `applications` and
    /// `appliedPositions`, but nothing is edited. Up to an intervention's first edit, the positions
    /// it would edit in a pass of its own are the ones counted here, since until then it sees the
    /// same activations; so a count of 0 means a pass with it attached computes exactly what a
    /// pass without it computes.
    public let decidesOnly: Bool

    /// An empty plan; with `decidesOnly`, one whose interventions decide without editing.
    public init(decidesOnly: Bool = false) {
        self.decidesOnly = decidesOnly
    }

    /// Adds an intervention after checking the feature exists and the action makes sense on it.
    /// Returns its index, for `applications` and `firstFiring(of:)`.
    @discardableResult
    public func add(_ intervention: Intervention) throws -> Int {
        try Self.validate(intervention.target)
        if case .probe(let p) = intervention.target { throw FeatureError.probeIsReadOnly(name: p.name, action: intervention.action.name) }
        if let c = intervention.trigger.condition { try Self.validate(c.target) }
        if case .direction(let d) = intervention.target, intervention.action.needsUnitVector,
           d.vector.allSatisfy({ $0 == 0 }) {
            throw FeatureError.zeroDirection(name: d.name)
        }
        for level in intervention.action.values {
            guard case .absolute(let v) = level else {
                throw FeatureError.badAction(argument: intervention.action.brief, reason: "the level '\(level)' was not worked out for the feature")
            }
            if !Float(v).isFinite {
                throw FeatureError.badAction(argument: intervention.action.brief, reason: "the value is not finite")
            }
        }
        interventions.append(intervention)
        firstFired.append(nil)
        holding.append(nil)
        applications.append(0)
        appliedPositions.append([])
        return interventions.count - 1
    }

    /// The first position where intervention `index`'s `.from` condition held, if it has.
    public func firstFiring(of index: Int) -> Int? {
        firstFired.indices.contains(index) ? firstFired[index] : nil
    }

    /// Adds a monitor of a direction's projection at every position.
    @discardableResult
    public func monitor(_ direction: Direction) throws -> DirectionMonitor {
        try Self.validate(.direction(direction))
        if direction.vector.allSatisfy({ $0 == 0 }) { throw FeatureError.zeroDirection(name: direction.name) }
        let m = DirectionMonitor(direction: direction)
        directionMonitors.append(m)
        return m
    }

    /// Adds a monitor of a probe's logit at every position.
    @discardableResult
    public func monitor(_ probe: Probe) throws -> ProbeMonitor {
        try Self.validate(.probe(probe))
        let m = ProbeMonitor(probe: probe)
        probeMonitors.append(m)
        return m
    }

    /// Adds a monitor of `binding`'s latents (top `top` per position above `threshold`). With
    /// `reconstruct` (it costs a reconstruction per position) records carry each position's relative
    /// squared error and the monitor tallies the FVU of the positions `counts` admits, given the
    /// position and its token (nil: every position).
    @discardableResult
    public func monitor(_ binding: SAEBinding, top: Int = 10, threshold: Float = 0, reconstruct: Bool = true,
                        counts: (@Sendable (_ position: Int, _ token: Int) -> Bool)? = nil) -> FeatureMonitor {
        let m = FeatureMonitor(binding: binding, top: max(top, 0), threshold: threshold, reconstructs: reconstruct, counts: counts)
        monitors.append(m)
        return m
    }

    /// Forgets trigger state, monitor records and counts: call between sequences.
    public func reset() {
        for i in firstFired.indices { firstFired[i] = nil }
        for i in holding.indices { holding[i] = nil }
        for i in applications.indices { applications[i] = 0 }
        for i in appliedPositions.indices { appliedPositions[i].removeAll() }
        for m in monitors { m.reset() }
        for m in directionMonitors { m.reset() }
        for m in probeMonitors { m.reset() }
    }

    private static func validate(_ target: FeatureTarget) throws {
        switch target {
        case let .latent(b, i):
            guard i >= 0 && i < b.sae.dSAE else {
                throw FeatureError.latentOutOfRange(pack: b.name, index: i, dSAE: b.sae.dSAE)
            }
        case .direction(let d):
            if let bad = d.vector.firstIndex(where: { !$0.isFinite }) {
                throw FeatureError.nonFinite(path: d.name, name: d.name, index: bad)
            }
        case .probe(let p):
            if let bad = p.weights.firstIndex(where: { !$0.isFinite }) {
                throw FeatureError.nonFinite(path: p.name, name: Probe.weightTensor, index: bad)
            }
            if !p.bias.isFinite { throw FeatureError.nonFinite(path: p.name, name: Probe.biasTensor, index: 0) }
        }
    }

    /// Attaches one hook per hook point used. Checks every point exists in the model and every
    /// SAE and direction has the model's width, before any token runs. `encodings` shares SAE
    /// encodings with other readers of the same hooks (nil: the plan keeps its own).
    public func attach(to hooks: HookSet, model: ModelInfo, encodings: SAEEncodingCache? = nil) throws {
        var points: [HookPoint] = []
        func use(_ p: HookPoint) { if !points.contains(p) { points.append(p) } }
        for iv in interventions {
            use(iv.point)
            if let c = iv.trigger.condition { use(c.target.point) }
        }
        for m in monitors { use(m.binding.point) }
        for m in directionMonitors { use(m.direction.point) }
        for m in probeMonitors { use(m.probe.point) }
        for p in points { try model.validate(p) }
        let order = model.hookPoints
        for iv in interventions {
            guard case .whileActive(let c) = iv.trigger,
                  let cp = order.firstIndex(of: c.target.point), let ep = order.firstIndex(of: iv.point), cp > ep else { continue }
            throw FeatureError.badAction(argument: "\(iv.action.brief) \(iv.target.label)",
                                         reason: "its while condition on \(c.target.label) is read at \(c.target.point), after the edit at \(iv.point)")
        }
        func checkWidth(_ t: FeatureTarget) throws {
            switch t {
            case .latent(let b, _):
                guard b.sae.dIn == model.width else {
                    throw FeatureError.widthMismatch(pack: b.name, dIn: b.sae.dIn, modelWidth: model.width)
                }
            case .direction(let d):
                guard d.vector.count == model.width else {
                    throw FeatureError.directionWidth(name: d.name, expected: model.width, found: d.vector.count)
                }
            case .probe(let p):
                guard p.weights.count == model.width else {
                    throw FeatureError.widthMismatch(pack: p.name, dIn: p.weights.count, modelWidth: model.width)
                }
            }
        }
        for iv in interventions {
            try checkWidth(iv.target)
            if let c = iv.trigger.condition { try checkWidth(c.target) }
        }
        for m in monitors { try checkWidth(.latent(m.binding, 0)) }
        for m in directionMonitors { try checkWidth(.direction(m.direction)) }
        for m in probeMonitors { try checkWidth(.probe(m.probe)) }
        let cache = encodings ?? SAEEncodingCache()
        for p in points {
            hooks.attach(at: p) { [self] acts in self.run(acts, cache: cache) }
        }
    }

    private func run(_ acts: HookActivations, cache: SAEEncodingCache) {
        let point = acts.point
        let d = acts.width
        // One encoding per SAE used at this point, of the activations as they arrived; the latent
        // edits below change this plan's copy, which later edits at this point then see.
        var edited: [ObjectIdentifier: SAEEncoding] = [:]
        func encoding(_ sae: SparseAutoencoder) -> SAEEncoding {
            edited[ObjectIdentifier(sae)] ?? cache.encoding(sae, of: acts)
        }
        var editedActivations = false
        defer { if editedActivations { cache.activationsEdited(acts) } }
        let tokens = Array(acts.tokens)
        let origins = Array(acts.origins)

        for m in monitors where m.binding.point == point {
            let sae = m.binding.sae
            let e = encoding(sae)
            var xHat = [Float](repeating: 0, count: d)
            for r in 0..<acts.count {
                let token = r < tokens.count ? tokens[r] : -1, origin = r < origins.count ? origins[r] : .prompt
                let position = acts.positions.lowerBound + r
                var error: Double?
                if m.reconstructs {
                    error = xHat.withUnsafeMutableBufferPointer { buf -> Double? in
                        guard let p = buf.baseAddress else { return nil }
                        sae.decode(e, row: r, into: p)
                        m.tally(acts.values + r * d, p, width: d, position: position, token: token, origin: origin)
                        return relativeSquaredError(acts.values + r * d, p, count: d)
                    }
                }
                let shown = e.active(r, limit: m.top).filter { $0.activation > m.threshold }
                m.append(FeatureMonitor.Record(
                    pack: m.binding.name, point: point, position: position,
                    token: token, origin: origin, latents: shown, l0: e.l0(r), relativeError: error))
            }
        }

        for m in directionMonitors where m.direction.point == point {
            for r in 0..<acts.count {
                m.append(DirectionMonitor.Record(
                    direction: m.direction.name, point: point, position: acts.positions.lowerBound + r,
                    token: r < tokens.count ? tokens[r] : -1, origin: r < origins.count ? origins[r] : .prompt,
                    projection: FeatureTarget.direction(m.direction).activation(row: r, of: acts, encoding: encoding)))
            }
        }

        for m in probeMonitors where m.probe.point == point {
            for r in 0..<acts.count {
                m.append(ProbeMonitor.Record(
                    probe: m.probe.name, point: point, position: acts.positions.lowerBound + r,
                    token: r < tokens.count ? tokens[r] : -1, origin: r < origins.count ? origins[r] : .prompt,
                    value: FeatureTarget.probe(m.probe).activation(row: r, of: acts, encoding: encoding)))
            }
        }

        // Conditions read the activations before this point's edits.
        for (k, iv) in interventions.enumerated() {
            switch iv.trigger {
            case .from(let c) where c.target.point == point:
                for r in 0..<acts.count where c.holds(c.target.activation(row: r, of: acts, encoding: encoding)) {
                    let pos = acts.positions.lowerBound + r
                    if firstFired[k].map({ pos < $0 }) ?? true { firstFired[k] = pos }
                    break
                }
            case .whileActive(let c) where c.target.point == point:
                holding[k] = (acts.positions, (0..<acts.count).map { c.holds(c.target.activation(row: $0, of: acts, encoding: encoding)) })
            default: break
            }
        }

        func active(_ k: Int, row r: Int) -> Bool {
            let iv = interventions[k]
            let pos = acts.positions.lowerBound + r
            guard iv.positions.admits(position: pos, origin: r < origins.count ? origins[r] : .prompt,
                                      end: acts.stepEnd) else { return false }
            switch iv.trigger {
            case .always: return true
            case .from:
                guard let first = firstFired[k], pos >= first else { return false }
                return true
            case .whileActive:
                guard let h = holding[k], h.positions == acts.positions, r < h.rows.count else { return false }
                return h.rows[r]
            case .gate(let g):
                return g.isOpen(at: pos)
            }
        }

        // SAE latent edits: f → f' per SAE, written back as x += W_dec·(f' − f)/scale.
        for (k, iv) in interventions.enumerated() where iv.point == point {
            guard case let .latent(b, i) = iv.target, iv.action.edited(0) != nil else { continue }
            var e = encoding(b.sae)
            for r in 0..<acts.count where active(k, row: r) {
                let f = e.latent(i, row: r)
                guard let f2 = iv.action.edited(f) else { continue }
                applications[k] += 1
                appliedPositions[k].append(acts.positions.lowerBound + r)
                if decidesOnly { continue }
                e.setLatent(i, row: r, to: f2)
                b.sae.addDecoderRow(i, times: f2 - f, scale: e.scales[r], to: acts.values + r * d)
                editedActivations = true
            }
            edited[ObjectIdentifier(b.sae)] = e
        }

        // Dense edits: add and project_out on latents' decoder rows, and every action on directions.
        for (k, iv) in interventions.enumerated() where iv.point == point {
            let vector: [Float]
            switch iv.target {
            case let .latent(b, i):
                if iv.action.edited(0) != nil { continue }
                vector = b.sae.decoderRow(i)
            case .direction(let dir):
                vector = dir.vector
            case .probe:
                continue   // never added: `add` refuses edits of a probe
            }
            for r in 0..<acts.count where active(k, row: r) {
                applications[k] += 1
                appliedPositions[k].append(acts.positions.lowerBound + r)
                if decidesOnly { continue }
                iv.action.apply(along: vector, to: acts.values + r * d, width: d)
                editedActivations = true
            }
        }
    }
}
