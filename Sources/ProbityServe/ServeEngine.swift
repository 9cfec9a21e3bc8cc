// The serving engine: one model shared by every request, run on its own thread. Requests wait in a
// bounded queue and join the running batch between decode steps (continuous batching through
// `BatchGenerator`), each with its own rules, steering, sampler and KV cache; text streams out as it
// completes, and each request ends with the rules' findings, the edits made and, when asked, the
// features per token, in the audit report's case schema. A request whose client goes away is cut at
// its next token.

import Foundation
import ProbityAudit
import ProbityFeatures
import ProbityLM
import ProbityRules

/// What the engine streams back for a request.
public enum CompletionEvent: Sendable {
    /// Text as it completes (whole UTF-8 characters, never part of a stop string).
    case text(String)
    /// The end: the completion, why it ended, and what the rules saw and did.
    case finished(CompletionOutcome)
}

/// A finished completion.
public struct CompletionOutcome: Sendable {
    public var text: String
    public var promptTokens: Int
    public var completionTokens: Int
    public var finishReason: CompletionFinishReason
    public var probity: ProbityResult
    /// The generation as an audit report's run (findings, pieces, features), for the audit log.
    public var run: AuditReport.Run
    /// The rendered prompt.
    public var prompt: String
    /// Seconds waiting in the queue, running the prompt, and decoding.
    public var queueSeconds: Double
    public var prefillSeconds: Double
    public var decodeSeconds: Double
}

/// A request checked and instrumented, ready to run: `ServeEngine.prepare` makes one.
public final class PreparedCompletion: @unchecked Sendable {
    public let promptText: String
    public let promptTokens: [Int]
    public let options: GenerationOptions
    public let failOn: RuleSeverity
    public let wantsFeatures: Bool
    // Built for this request alone and used only on the engine's thread once submitted.
    let recorder: any RuleRecorder
    let steering: FeaturePlan?
    let steeringNames: [(feature: String, action: String)]

    init(promptText: String, promptTokens: [Int], options: GenerationOptions, failOn: RuleSeverity, wantsFeatures: Bool,
         recorder: any RuleRecorder, steering: FeaturePlan?, steeringNames: [(feature: String, action: String)]) {
        self.promptText = promptText
        self.promptTokens = promptTokens
        self.options = options
        self.failOn = failOn
        self.wantsFeatures = wantsFeatures
        self.recorder = recorder
        self.steering = steering
        self.steeringNames = steeringNames
    }
}

/// Requests waiting and running, for metrics and health.
public struct EngineLoad: Sendable, Equatable {
    public var queued: Int
    public var running: Int

    public init(queued: Int, running: Int) {
        self.queued = queued
        self.running = running
    }
}

/// One model serving many requests.
public final class ServeEngine: @unchecked Sendable {
    public struct Configuration: Sendable {
        /// Most sequences decoded together.
        public var maxBatch: Int
        /// Most requests waiting to join the batch; more are refused (`ServeError.queueFull`).
        public var maxQueue: Int
        /// `max_tokens` when a request gives none.
        public var defaultMaxTokens: Int
        /// The severity at or above which a finding fails a request's verdict, unless it says.
        public var failOn: RuleSeverity
        /// `auto` (the model's own template) or a format name, as audits take it.
        public var chatFormat: String

        public init(maxBatch: Int = 16, maxQueue: Int = 64, defaultMaxTokens: Int = 256, failOn: RuleSeverity = .high,
                    chatFormat: String = "auto") {
            self.maxBatch = maxBatch
            self.maxQueue = maxQueue
            self.defaultMaxTokens = defaultMaxTokens
            self.failOn = failOn
            self.chatFormat = chatFormat
        }
    }

    public let loaded: LoadedModel
    public let rules: AuditRuleSet
    /// Packs a request may steer with and read features of, by name.
    public let packs: [FeaturePack]
    public let configuration: Configuration
    /// The chat format; nil when the model has none (chat requests are then refused).
    public let chatFormat: ChatFormat?
    private let severities: [String: RuleSeverity]

    private let lock = NSCondition()
    private var waiting: [Job] = []
    private var running = 0
    private var accepting = true
    private var stopped = false
    private var thread: Thread?

    /// Starts the engine's thread, which runs until `shutdown()`. `packs` are those requests may
    /// name (`pack/feature`).
    public init(loaded: LoadedModel, rules: AuditRuleSet, packs: [FeaturePack], configuration: Configuration = Configuration()) throws {
        guard configuration.maxBatch >= 1 else { throw ServeError.invalid("the batch size must be at least 1", param: nil) }
        guard configuration.maxQueue >= 0 else { throw ServeError.invalid("the queue size must not be negative", param: nil) }
        self.loaded = loaded
        self.rules = rules
        self.packs = packs
        self.configuration = configuration
        chatFormat = try? ChatTemplate.format(for: loaded.file, override: configuration.chatFormat == "auto" ? nil : configuration.chatFormat)
        severities = Dictionary(rules.infos.map { ($0.id, $0.severity) }, uniquingKeysWith: { a, _ in a })
        // The thread holds the engine until `shutdown` ends it.
        let thread = Thread { self.loop() }
        thread.name = "probity-engine"
        thread.stackSize = 8 << 20
        self.thread = thread
        thread.start()
    }

    /// Ends the engine's thread once nothing is queued or running.
    private func stopThread() {
        lock.lock()
        stopped = true
        lock.broadcast()
        lock.unlock()
    }

    /// Requests waiting and running now.
    public var load: EngineLoad {
        lock.lock()
        defer { lock.unlock() }
        return EngineLoad(queued: waiting.count, running: running)
    }

    // MARK: Preparing a request

    /// Checks `request` against the model, rules and packs, renders and tokenizes its prompt, and
    /// builds its hooks. Throws `ServeError.invalid` or `.contextLength`, naming the field at fault.
    public func prepare(_ request: CompletionRequest) throws -> PreparedCompletion {
        let tokenizer = loaded.tokenizer
        let context = loaded.model.info.contextLength
        var stops = request.stop
        let text: String, tokens: [Int], promptParam: String
        switch request.input {
        case .chat(let messages):
            guard !messages.isEmpty else { throw ServeError.invalid("messages must hold at least one message", param: "messages") }
            guard let format = chatFormat else {
                throw ServeError.invalid("this model has no chat template; use /v1/completions", param: "messages")
            }
            let chat: RenderedChat
            do { chat = try format.renderChat(messages, addGenerationPrompt: true) } catch {
                throw ServeError.invalid("the messages cannot be rendered: \(error)", param: "messages")
            }
            text = chat.text
            tokens = tokenizer.encode(chat, addSpecial: true)
            stops.append(format.endOfTurn)
            promptParam = "messages"
        case .text(let prompt):
            text = prompt
            tokens = tokenizer.encode(prompt, addSpecial: true, parseSpecial: false)
            promptParam = "prompt"
        }
        guard !tokens.isEmpty else { throw ServeError.invalid("the prompt is empty", param: promptParam) }
        guard tokens.count < context else {
            throw ServeError.contextLength(needed: tokens.count + 1, capacity: context, param: promptParam)
        }
        let maxTokens: Int
        if let asked = request.maxTokens {
            guard asked >= 1 else { throw ServeError.invalid("max_tokens must be at least 1, found \(asked)", param: "max_tokens") }
            guard tokens.count + asked <= context else {
                throw ServeError.contextLength(needed: tokens.count + asked, capacity: context, param: "max_tokens")
            }
            maxTokens = asked
        } else {
            maxTokens = min(configuration.defaultMaxTokens, context - tokens.count)
        }
        guard request.temperature.isFinite, (0...2).contains(request.temperature) else {
            throw ServeError.invalid("temperature must be between 0 and 2, found \(request.temperature)", param: "temperature")
        }
        guard request.topP.isFinite, request.topP > 0, request.topP <= 1 else {
            throw ServeError.invalid("top_p must be in (0, 1], found \(request.topP)", param: "top_p")
        }
        guard request.stop.count <= 4 else { throw ServeError.invalid("stop holds at most 4 strings", param: "stop") }
        if request.stop.contains(where: \.isEmpty) { throw ServeError.invalid("a stop string must not be empty", param: "stop") }
        let seed = request.seed ?? UInt64.random(in: .min ... .max)
        let sampling = SamplingOptions(temperature: Float(request.temperature), topP: Float(request.topP), seed: seed)
        let options = GenerationOptions(maxTokens: maxTokens, sampling: sampling, stopStrings: stops)

        let p = request.probity ?? ProbityRequestOptions()
        let only = try selectRules(p.rules)
        let watch = try featureWatch(p.features)
        let recorder: any RuleRecorder
        do { recorder = try rules.instrument(model: loaded.model.info, steer: true, only: only, features: watch) } catch {
            throw ServeError.invalid("the rules cannot be attached: \(error)", param: "probity.rules")
        }
        let (plan, names) = try steeringPlan(p.steer ?? [], hooks: recorder.hooks)
        return PreparedCompletion(promptText: text, promptTokens: tokens, options: options, failOn: p.failOn ?? configuration.failOn,
                                  wantsFeatures: watch.top > 0, recorder: recorder, steering: plan, steeringNames: names)
    }

    /// The rule ids a request's `rules` selects: each entry a rule id or a tag; nil keeps them all.
    func selectRules(_ asked: [String]?) throws -> Set<String>? {
        guard let asked else { return nil }
        var out: Set<String> = []
        for (i, entry) in asked.enumerated() {
            let matching = rules.compiled.rules.filter { $0.id == entry || $0.rule.tags.contains(entry) }.map(\.id)
            guard !matching.isEmpty else {
                let known = rules.compiled.rules.map(\.id)
                throw ServeError.invalid("no rule has the id or tag '\(entry)' (rules: \(known.isEmpty ? "none loaded" : known.joined(separator: ", ")))",
                                         param: "probity.rules[\(i)]")
            }
            out.formUnion(matching)
        }
        return out
    }

    /// What a request's `features` asks the recorder to read.
    func featureWatch(_ asked: FeatureRequest?) throws -> FeatureWatch {
        guard let asked else { return .none }
        guard (1...64).contains(asked.topK) else {
            throw ServeError.invalid("features.top_k must be between 1 and 64, found \(asked.topK)", param: "probity.features.top_k")
        }
        let saePacks = packs.filter { $0.binding != nil }
        var chosen: [FeaturePack] = []
        if let names = asked.packs {
            for (i, name) in names.enumerated() {
                guard let pack = pack(named: name), pack.binding != nil else {
                    throw ServeError.invalid("no SAE pack named '\(name)' is loaded (SAE packs: \(saePacks.map(Self.directory).joined(separator: ", ")))",
                                             param: "probity.features.packs[\(i)]")
                }
                chosen.append(pack)
            }
        } else {
            chosen = saePacks
        }
        guard !chosen.isEmpty else { throw ServeError.invalid("no SAE pack is loaded to read features from", param: "probity.features") }
        return FeatureWatch(top: asked.topK, packs: chosen.compactMap(\.binding))
    }

    /// The request's own edits, attached to `hooks` after the rules' (so rules read the activations
    /// before the request steers them), and each edit's feature and action for the response.
    func steeringPlan(_ edits: [SteerEdit], hooks: HookSet) throws -> (FeaturePlan?, [(feature: String, action: String)]) {
        guard !edits.isEmpty else { return (nil, []) }
        guard edits.count <= 32 else { throw ServeError.invalid("steer holds at most 32 edits", param: "probity.steer") }
        let plan = FeaturePlan()
        var names: [(feature: String, action: String)] = []
        for (i, e) in edits.enumerated() {
            let param = "probity.steer[\(i)]"
            let (pack, feature) = try resolve(e.feature, param: param + ".feature")
            let argument = e.value.map { "\(feature)=\($0)" } ?? feature
            do {
                try plan.add(try pack.intervention(e.action.replacingOccurrences(of: "-", with: "_"), argument, flag: "steer action \(e.action)"))
            } catch let error as ServeError {
                throw error
            } catch {
                throw ServeError.invalid("\(param): \(error)", param: param)
            }
            // Named as the request wrote it, so a client finds its own edit.
            names.append((e.feature, e.action))
        }
        do { try plan.attach(to: hooks, model: loaded.model.info) } catch {
            throw ServeError.invalid("probity.steer: \(error)", param: "probity.steer")
        }
        return (plan, names)
    }

    /// The pack a request names: by its directory's name, or by its manifest's name when no other
    /// pack has that name too.
    func pack(named name: String) -> FeaturePack? {
        if let byDirectory = packs.first(where: { Self.directory($0) == name }) { return byDirectory }
        let byName = packs.filter { $0.name == name }
        return byName.count == 1 ? byName.first : nil
    }

    static func directory(_ pack: FeaturePack) -> String { URL(fileURLWithPath: pack.path).lastPathComponent }

    /// The packs as requests may name them, for messages.
    var packNames: String {
        packs.isEmpty ? "none loaded; start the server with --pack" : packs.map(Self.directory).joined(separator: ", ")
    }

    /// `pack/feature`, or a bare feature when one pack is loaded.
    func resolve(_ reference: String, param: String) throws -> (FeaturePack, String) {
        if let slash = reference.firstIndex(of: "/") {
            let name = String(reference[..<slash]), feature = String(reference[reference.index(after: slash)...])
            if let pack = pack(named: name), !feature.isEmpty { return (pack, feature) }
            throw ServeError.invalid("feature '\(reference)': no pack named '\(name)' is loaded, or more than one has that name (packs by directory: \(packNames))",
                                     param: param)
        }
        if packs.count == 1, let only = packs.first, !reference.isEmpty { return (only, reference) }
        throw ServeError.invalid("feature '\(reference)': expected PACK/FEATURE with PACK one of the server's packs (\(packNames))",
                                 param: param)
    }

    // MARK: Running requests

    /// One request between `submit` and its end.
    final class Job: @unchecked Sendable {
        let prepared: PreparedCompletion
        let continuation: AsyncThrowingStream<CompletionEvent, Error>.Continuation
        let submitted = ContinuousClock.now
        private let flag = NSLock()
        private var isCancelled = false

        init(prepared: PreparedCompletion, continuation: AsyncThrowingStream<CompletionEvent, Error>.Continuation) {
            self.prepared = prepared
            self.continuation = continuation
        }

        var cancelled: Bool {
            flag.lock()
            defer { flag.unlock() }
            return isCancelled
        }

        func cancel() {
            flag.lock()
            isCancelled = true
            flag.unlock()
        }
    }

    /// Queues a prepared request and returns its events: text as it completes, then the outcome.
    /// Stopping iteration (a client that went away) cancels it. Throws `queueFull` or `shuttingDown`.
    public func submit(_ prepared: PreparedCompletion) throws -> AsyncThrowingStream<CompletionEvent, Error> {
        let (stream, continuation) = AsyncThrowingStream<CompletionEvent, Error>.makeStream()
        let job = Job(prepared: prepared, continuation: continuation)
        continuation.onTermination = { _ in job.cancel() }
        lock.lock()
        defer { lock.unlock() }
        guard accepting, !stopped else { throw ServeError.shuttingDown }
        guard waiting.count < configuration.maxQueue else { throw ServeError.queueFull(limit: configuration.maxQueue) }
        waiting.append(job)
        lock.signal()
        return stream
    }

    /// Takes no new requests from now on (they get `shuttingDown`); those queued and running finish.
    public func stopAccepting() {
        lock.lock()
        accepting = false
        lock.unlock()
    }

    /// Waits until no request is queued or running.
    public func drain() async {
        while true {
            let l = load
            if l.queued == 0 && l.running == 0 { return }
            try? await Task.sleep(for: .milliseconds(10))
        }
    }

    /// Stops taking requests, lets those in flight finish, and ends the engine's thread.
    public func shutdown() async {
        stopAccepting()
        await drain()
        stopThread()
    }

    /// A sequence in the batch.
    private struct Active {
        var job: Job
        var prefillSeconds: Double
        var queueSeconds: Double
    }

    /// Runs batches until shut down; a failed step ends its batch's requests and a fresh batch goes on.
    private func loop() {
        while !runBatches() {}
    }

    /// Runs one batch generator until shut down (true) or until a step fails (false).
    private func runBatches() -> Bool {
        let batch = BatchGenerator(model: loaded.model)
        var active: [Int: Active] = [:]
        while true {
            lock.lock()
            while waiting.isEmpty && active.isEmpty && !stopped { lock.wait() }
            if stopped && waiting.isEmpty && active.isEmpty {
                lock.unlock()
                return true
            }
            let room = max(0, configuration.maxBatch - active.count)
            let joining = Array(waiting.prefix(room))
            waiting.removeFirst(joining.count)
            running += joining.count
            lock.unlock()

            for job in joining {
                if let a = start(job, in: batch) { active[a.id] = a.active }
            }
            guard batch.activeCount > 0 else { continue }
            do {
                for id in try batch.step() {
                    guard let a = active.removeValue(forKey: id) else { continue }
                    // Counted out before its client hears the end, so the load it reads is current.
                    finished(1)
                    if let result = batch.result(id) { complete(a, result) }
                }
            } catch {
                // A failed step leaves every sequence of it in an unknown state: each ends with the error.
                finished(active.count)
                for a in active.values { a.job.continuation.finish(throwing: ServeError.failed("\(error)")) }
                return false
            }
        }
    }

    private func finished(_ n: Int) {
        lock.lock()
        running -= n
        lock.unlock()
    }

    /// Runs a job's prompt and adds it to the batch; nil when it was cancelled or failed (ended, and
    /// counted out).
    private func start(_ job: Job, in batch: BatchGenerator) -> (id: Int, active: Active)? {
        if job.cancelled {
            finished(1)
            job.continuation.finish(throwing: CancellationError())
            return nil
        }
        let p = job.prepared
        let clock = ContinuousClock()
        let t0 = clock.now
        do {
            let model = loaded.model
            let session = try model.makeSession(capacity: min(p.promptTokens.count + p.options.maxTokens, model.info.contextLength))
            let logits = try session.forward(p.promptTokens, origins: nil, hooks: p.recorder.hooks, logits: .last)
            let recorder = p.recorder
            let stream = try GenerationStream(prompt: p.promptTokens, options: p.options, tokenizer: loaded.tokenizer,
                                              halted: recorder.shouldStop)
            let prefill = (clock.now - t0).seconds
            let continuation = job.continuation
            let id = batch.add(session: session, logits: logits, stream: stream, hooks: recorder.hooks, prefillSeconds: prefill,
                               shouldStop: { recorder.shouldStop }, interrupted: { job.cancelled },
                               onText: { if !$0.isEmpty { continuation.yield(.text($0)) } })
            return (id, Active(job: job, prefillSeconds: prefill, queueSeconds: (t0 - job.submitted).seconds))
        } catch {
            finished(1)
            job.continuation.finish(throwing: ServeError.failed("\(error)"))
            return nil
        }
    }

    /// Ends a job with its outcome (or, cancelled, without one).
    private func complete(_ a: Active, _ result: GenerationResult) {
        let p = a.job.prepared
        guard let run = AuditRunner.result(of: result, recorder: p.recorder) else {
            a.job.continuation.finish(throwing: CancellationError())
            return
        }
        let tokenizer = loaded.tokenizer
        let reportRun = AuditReport.Run(run, prompt: p.promptTokens, severities: severities,
                                        tokenizer: { (try? tokenizer.piece($0)) ?? "" })
        var interventions = p.recorder.edits.filter { !$0.positions.isEmpty }.map {
            AppliedIntervention(source: $0.rule, feature: $0.feature, action: $0.action, positionsEdited: $0.positions.count)
        }
        if let plan = p.steering {
            for (i, name) in p.steeringNames.enumerated() where plan.appliedPositions.indices.contains(i) {
                let n = plan.appliedPositions[i].count
                if n > 0 { interventions.append(AppliedIntervention(source: "request", feature: name.feature, action: name.action, positionsEdited: n)) }
            }
        }
        let finish: CompletionFinishReason
        switch result.finishReason {
        case .eos, .stop: finish = .stop
        case .length, .interrupted: finish = .length
        case .halted: finish = .contentFilter
        }
        let probity = ProbityResult(findings: reportRun.fired, interventions: interventions,
                                    features: p.wantsFeatures ? (reportRun.features ?? []) : nil,
                                    passed: reportRun.fired.allSatisfy { $0.severity < p.failOn }, failOn: p.failOn,
                                    pieces: p.wantsFeatures ? reportRun.pieces : nil)
        let outcome = CompletionOutcome(text: result.text, promptTokens: p.promptTokens.count, completionTokens: result.tokens.count,
                                        finishReason: finish, probity: probity, run: reportRun, prompt: p.promptText,
                                        queueSeconds: a.queueSeconds, prefillSeconds: a.prefillSeconds,
                                        decodeSeconds: result.decodeSeconds)
        a.job.continuation.yield(.finished(outcome))
        a.job.continuation.finish()
    }
}
