// The HTTP server of `probity serve`: the routes over one serving engine, its middleware (errors as
// OpenAI error objects, metrics, the API key), and a run that shuts down gracefully on SIGINT or
// SIGTERM: new requests get 503, those in flight finish, then the process may exit.

import Foundation
import Hummingbird
import Logging
import ProbityAudit
import ProbityLM
import ProbityServe
import ServiceLifecycle

/// What the server is told besides its engine.
public struct ServerConfiguration: Sendable {
    public var host: String
    public var port: Int
    /// Bodies larger than this are refused with 413.
    public var maxBodyBytes: Int
    /// When set, every endpoint but /health asks for `Authorization: Bearer KEY`.
    public var apiKey: String?

    public init(host: String = "127.0.0.1", port: Int = 8080, maxBodyBytes: Int = 1 << 20, apiKey: String? = nil) {
        self.host = host
        self.port = port
        self.maxBodyBytes = maxBodyBytes
        self.apiKey = apiKey
    }
}

/// One engine served over HTTP.
public final class CompletionServer: @unchecked Sendable {
    public let engine: ServeEngine
    public let configuration: ServerConfiguration
    /// The one model `/v1/models` lists and responses name.
    public let modelID: String
    public let metrics = ServerMetrics()
    /// Where finished requests are logged, with the header every line shares.
    public let auditLog: (log: AuditLog, header: AuditReport.ServedHeader)?
    let created = Int(Date().timeIntervalSince1970)
    /// Where failures no response can carry go (an audit log that cannot be written).
    let logger: Logger

    private let lock = NSLock()
    private var stopping = false

    public init(engine: ServeEngine, configuration: ServerConfiguration = ServerConfiguration(),
                auditLog: (log: AuditLog, header: AuditReport.ServedHeader)? = nil, logger: Logger = Logger(label: "probity.serve")) {
        self.engine = engine
        self.logger = logger
        self.configuration = configuration
        self.auditLog = auditLog
        modelID = Self.modelID(engine.loaded)
    }

    /// The GGUF's `general.name`, else the file's name without `.gguf`.
    public static func modelID(_ loaded: LoadedModel) -> String {
        if let name = loaded.file.value("general.name")?.stringValue, !name.isEmpty { return name }
        let file = URL(fileURLWithPath: loaded.path).lastPathComponent
        return file.hasSuffix(".gguf") ? String(file.dropLast(5)) : file
    }

    /// Whether shutdown has begun.
    public var isStopping: Bool {
        lock.lock()
        defer { lock.unlock() }
        return stopping
    }

    /// Takes no new completions from now on (503), and /health says so; those in flight finish.
    public func beginShutdown() {
        lock.lock()
        stopping = true
        lock.unlock()
        engine.stopAccepting()
    }

    /// The router: the API's routes, 405 for a known path with another method, OpenAI error objects
    /// for everything that fails.
    public func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: MetricsMiddleware(metrics: metrics))
        router.add(middleware: ErrorMiddleware())
        if let key = configuration.apiKey { router.add(middleware: AuthMiddleware(key: key)) }

        let routes: [(String, HTTPRequest.Method, @Sendable (Request, BasicRequestContext) async throws -> Response)] = [
            ("/v1/chat/completions", .post, { [unowned self] r, c in try await self.chatCompletions(r, context: c) }),
            ("/v1/completions", .post, { [unowned self] r, c in try await self.textCompletions(r, context: c) }),
            ("/v1/models", .get, { [unowned self] _, _ in self.models() }),
            ("/health", .get, { [unowned self] _, _ in self.health() }),
            ("/metrics", .get, { [unowned self] _, _ in self.metricsText() }),
        ]
        let methods: [HTTPRequest.Method] = [.get, .post, .put, .delete, .patch, .head, .options]
        for (path, method, handler) in routes {
            router.on(RouterPath(path), method: method, use: handler)
            for other in methods where other != method {
                router.on(RouterPath(path), method: other) { request, _ -> Response in
                    var e = APIError(status: .methodNotAllowed, message: "\(request.method) is not allowed on \(path); use \(method)",
                                     type: "invalid_request_error", code: "method_not_allowed")
                    e.retryAfter = nil
                    var response = e.response()
                    response.headers[.allow] = method.rawValue
                    return response
                }
            }
        }
        return router
    }

    /// The application, bound to the configured host and port.
    public func makeApplication() -> some ApplicationProtocol {
        Application(router: makeRouter(),
                    configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
                    logger: logger)
    }

    /// Serves until SIGINT or SIGTERM, then shuts down gracefully: new requests get 503, requests
    /// in flight finish, the engine stops, and the server closes.
    public func run(onRunning: @escaping @Sendable () -> Void = {}) async throws {
        let app = Application(router: makeRouter(),
                              configuration: .init(address: .hostname(configuration.host, port: configuration.port)),
                              onServerRunning: { _ in onRunning() },
                              logger: logger)
        // Shut down in reverse order: the engine first (503 for new requests, drain), then the listener.
        let group = ServiceGroup(configuration: .init(services: [app, EngineService(server: self, logger: logger)],
                                                      gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

/// Holds the engine for the service group: on graceful shutdown it stops taking requests, waits for
/// those in flight and ends the engine's thread.
struct EngineService: Service {
    let server: CompletionServer
    let logger: Logger

    func run() async throws {
        try? await gracefulShutdown()
        let load = server.engine.load
        logger.info("shutting down: \(load.queued) queued and \(load.running) running requests finish first")
        server.beginShutdown()
        await server.engine.shutdown()
        logger.info("engine stopped")
    }
}
