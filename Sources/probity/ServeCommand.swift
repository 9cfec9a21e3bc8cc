// `probity serve`: an OpenAI-compatible HTTP server over one model, with the rules watching and
// steering every request and an optional audit log of one report per request. SIGINT or SIGTERM
// shuts it down gracefully (new requests get 503, those in flight finish) and it exits 0.

import ArgumentParser
import Foundation
import Logging
import ProbityAudit
import ProbityFeatures
import ProbityLM
import ProbityRules
import ProbityServe
import ProbityServer

struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Serve the model over an OpenAI-compatible HTTP API, with rules on every request.",
        discussion: """
            Endpoints: POST /v1/chat/completions, POST /v1/completions (both with "stream": true), \
            GET /v1/models, GET /health, GET /metrics (Prometheus). A request may hold a "probity" \
            object (rules, steer, features, fail_on); responses carry one with the findings. \
            SIGINT or SIGTERM: new requests get 503, those in flight finish, then exit 0.
            """)

    @OptionGroup var modelOptions: ModelOptions

    @Option(parsing: .upToNextOption, help: "Rule files (YAML) applied to every request.")
    var rules: [String] = []

    @Option(name: .customLong("pack"), help: "A feature pack requests may steer and read features of (repeatable); the rules' packs are loaded too.")
    var packs: [String] = []

    @OptionGroup var mismatchOption: ModelMismatchOption

    @Option(help: "The address to listen on.")
    var host: String = "127.0.0.1"

    @Option(help: "The port to listen on.")
    var port: Int = 8080

    @Option(name: .customLong("audit-log"), help: ArgumentHelp("Append one audit report per finished request to this JSONL file.", valueName: "file.jsonl"))
    var auditLog: String?

    @Option(name: .customLong("audit-log-max-bytes"), help: "Rotate the audit log past this size (FILE → FILE.1 …, five kept).")
    var auditLogMaxBytes: Int = 64 << 20

    @Option(help: "Most requests waiting to join the batch; more get 429.")
    var maxQueue: Int = 64

    @Option(help: "Most requests decoded together.")
    var maxBatch: Int = 16

    @Option(help: "max_tokens for requests that give none.")
    var maxTokens: Int = 256

    @Option(help: "A request's verdict fails on findings at or above this severity, unless it says: info, low, medium, high, critical.")
    var failOn: String = "high"

    @Option(help: "Require Authorization: Bearer KEY on every endpoint but /health (default: $PROBITY_API_KEY).")
    var apiKey: String?

    @Option(help: "Bodies larger than this many bytes get 413.")
    var maxBodyBytes: Int = 1 << 20

    @OptionGroup var kvCacheOption: KVCacheOption
    @OptionGroup var activationsOption: ActivationsOption

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port: expected 0 to 65535, found \(port)") }
        guard maxQueue >= 0 else { throw ValidationError("--max-queue: expected 0 or more, found \(maxQueue)") }
        guard maxBatch >= 1 else { throw ValidationError("--max-batch: expected 1 or more, found \(maxBatch)") }
        guard maxTokens >= 1 else { throw ValidationError("--max-tokens: expected 1 or more, found \(maxTokens)") }
        guard maxBodyBytes >= 1 else { throw ValidationError("--max-body-bytes: expected 1 or more, found \(maxBodyBytes)") }
        guard auditLogMaxBytes >= 1 else { throw ValidationError("--audit-log-max-bytes: expected 1 or more, found \(auditLogMaxBytes)") }
        guard RuleSeverity(rawValue: failOn) != nil else {
            throw ValidationError("--fail-on: expected one of info, low, medium, high, critical, found '\(failOn)'")
        }
        if let apiKey, apiKey.isEmpty { throw ValidationError("--api-key: expected a non-empty key") }
    }

    func run() throws {
        LoggingSystem.bootstrap(StreamLogHandler.standardError)
        let logger = Logger(label: "probity.serve")
        let severity = RuleSeverity(rawValue: failOn) ?? .high
        let loaded = try modelOptions.load(kvCache: try kvCacheOption.storage(),
                                           activations: try activationsOption.precision())
        let ruleSet = try AuditRuleSet(files: rules, model: loaded)
        let (servedPacks, notes) = try ServedPacks.load(packs + ruleSet.compiled.packs.map(\.path), for: loaded,
                                                         allowModelMismatch: mismatchOption.allowModelMismatch)
        for note in notes { logger.warning("\(note)") }
        let engine = try ServeEngine(loaded: loaded, rules: ruleSet, packs: servedPacks,
                                     configuration: .init(maxBatch: maxBatch, maxQueue: maxQueue, defaultMaxTokens: maxTokens, failOn: severity))
        var log: (AuditLog, AuditReport.ServedHeader)?
        if let auditLog {
            let header = try AuditReport.ServedHeader(probityVersion: Version.current, loaded: loaded, model: modelOptions.model, rules: ruleSet,
                                                      ruleFiles: rules, maxTokens: maxTokens, failOn: severity, chatFormat: "auto")
            do { log = (try AuditLog(path: auditLog, maxBytes: auditLogMaxBytes), header) } catch let e as AuditLog.OpenError {
                throw ValidationError("--audit-log: \(e.description)")
            }
        }
        let key = apiKey ?? ProcessInfo.processInfo.environment["PROBITY_API_KEY"].flatMap { $0.isEmpty ? nil : $0 }
        let server = CompletionServer(engine: engine,
                                      configuration: .init(host: host, port: port, maxBodyBytes: maxBodyBytes, apiKey: key),
                                      auditLog: log, logger: logger)
        let (host, port, model) = (host, port, server.modelID)
        let ruleCount = ruleSet.compiled.rules.count, packNames = servedPacks.map(\.name)
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        Task {
            do {
                try await server.run {
                    logger.info("serving \(model) on http://\(host):\(port) (\(ruleCount) rules, packs: \(packNames.isEmpty ? "none" : packNames.joined(separator: ", ")))")
                }
            } catch {
                outcome.set(error)
            }
            done.signal()
        }
        done.wait()
        if let error = outcome.error {
            // Binding the address is the failure a user causes (a port in use, a host not here).
            throw ValidationError("cannot serve on \(host):\(port): \(error)")
        }
        logger.info("stopped")
    }

    /// The server's error, handed from its task to the command.
    final class Outcome: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: Error?

        var error: Error? {
            lock.lock()
            defer { lock.unlock() }
            return stored
        }

        func set(_ e: Error) {
            lock.lock()
            stored = e
            lock.unlock()
        }
    }
}
