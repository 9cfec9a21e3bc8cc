// Prometheus metrics of `probity serve` (`GET /metrics`): requests by endpoint and status, tokens,
// the engine's queue and running requests, request latency and time to first token, and the
// rules' findings by rule and severity.

import Foundation
import Hummingbird
import Prometheus
import ProbityAudit
import ProbityServe

/// The server's metrics, in their own registry.
public final class ServerMetrics: Sendable {
    public let registry = PrometheusCollectorRegistry()
    private let promptTokens: Counter
    private let completionTokens: Counter
    private let queueDepth: Gauge
    private let running: Gauge
    /// Latency buckets, seconds: a small model answers in tens of milliseconds, a long one in minutes.
    static let buckets: [Duration] = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300].map { .milliseconds(Int64($0 * 1000)) }

    /// The endpoints metrics name; anything else is counted as `other`.
    static let endpoints: Set<String> = ["/v1/chat/completions", "/v1/completions", "/v1/models", "/health", "/metrics"]

    public init() {
        promptTokens = registry.makeCounter(descriptor: .init(namespace: "probity", metricName: "prompt_tokens", unitName: "total",
                                                              helpText: "Prompt tokens of finished completions."))
        completionTokens = registry.makeCounter(descriptor: .init(namespace: "probity", metricName: "completion_tokens", unitName: "total",
                                                                  helpText: "Generated tokens of finished completions."))
        queueDepth = registry.makeGauge(descriptor: .init(namespace: "probity", metricName: "queue", unitName: "depth",
                                                          helpText: "Requests waiting to join the running batch."))
        running = registry.makeGauge(descriptor: .init(namespace: "probity", metricName: "running", unitName: "requests",
                                                       helpText: "Requests in the running batch."))
    }

    static func endpoint(_ path: String) -> String { endpoints.contains(path) ? path : "other" }

    /// One answered request.
    func request(endpoint: String, status: Int, seconds: Double) {
        registry.makeCounter(descriptor: .init(namespace: "probity", metricName: "http_requests", unitName: "total",
                                               helpText: "HTTP requests by endpoint and status."),
                             labels: [("endpoint", endpoint), ("status", String(status))]).increment()
        registry.makeDurationHistogram(descriptor: .init(namespace: "probity", metricName: "request_duration", unitName: "seconds",
                                                         helpText: "Time from a request's arrival to its response's last byte."),
                                       labels: [("endpoint", endpoint)], buckets: Self.buckets)
            .record(.nanoseconds(Int64(seconds * 1e9)))
    }

    /// The first text (or the end, when there is none) of a completion.
    func firstToken(endpoint: String, seconds: Double) {
        registry.makeDurationHistogram(descriptor: .init(namespace: "probity", metricName: "time_to_first_token", unitName: "seconds",
                                                         helpText: "Time from a completion request's arrival to its first text."),
                                       labels: [("endpoint", endpoint)], buckets: Self.buckets)
            .record(.nanoseconds(Int64(seconds * 1e9)))
    }

    /// A finished completion: its tokens and findings.
    func completed(_ outcome: CompletionOutcome) {
        promptTokens.increment(by: Int64(outcome.promptTokens))
        completionTokens.increment(by: Int64(outcome.completionTokens))
        for f in outcome.probity.findings {
            registry.makeCounter(descriptor: .init(namespace: "probity", metricName: "findings", unitName: "total",
                                                   helpText: "Rule findings on served completions, by rule and severity."),
                                 labels: [("rule", f.rule), ("severity", f.severity.rawValue)]).increment()
        }
    }

    /// The exposition text, with the engine's load read now.
    func text(load: EngineLoad) -> String {
        queueDepth.set(Double(load.queued))
        running.set(Double(load.running))
        return registry.emitToString()
    }
}

/// Counts every request by endpoint and status and times it to its response's last byte.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let endpoint = ServerMetrics.endpoint(request.uri.path)
        var response = try await next(request, context)
        let status = response.status.code
        let body = response.body
        let metrics = self.metrics
        response.body = ResponseBody(contentLength: body.contentLength) { writer in
            defer { metrics.request(endpoint: endpoint, status: status, seconds: (ContinuousClock.now - start).seconds) }
            try await body.write(writer)
        }
        return response
    }
}

extension Duration {
    var seconds: Double {
        let c = components
        return Double(c.seconds) + Double(c.attoseconds) * 1e-18
    }
}
