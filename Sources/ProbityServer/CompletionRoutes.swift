// The handlers: chat and text completions (whole, or streamed as server-sent events), the model
// list, health and metrics. A completion is read and checked before anything is sent, so every
// client mistake is a 4xx with an error object; a streamed one ends early when its client goes.

import Foundation
import Hummingbird
import ProbityAudit
import ProbityServe

extension CompletionServer {
    /// `POST /v1/chat/completions`.
    func chatCompletions(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let start = Start()
        let wire = try await decodeBody(ChatCompletionRequest.self, request)
        return try await complete(try wire.completionRequest(), wire: wire, kind: .chat, start: start)
    }

    /// `POST /v1/completions`.
    func textCompletions(_ request: Request, context: BasicRequestContext) async throws -> Response {
        let start = Start()
        let wire = try await decodeBody(TextCompletionRequest.self, request)
        return try await complete(try wire.completionRequest(), wire: wire, kind: .text, start: start)
    }

    /// `GET /v1/models`.
    func models() -> Response {
        json(ModelList(object: "list", data: [.init(id: modelID, object: "model", created: created, ownedBy: "probity")]))
    }

    /// `GET /health`: 200 while serving, 503 once shutting down.
    func health() -> Response {
        let load = engine.load
        let stopping = isStopping
        return json(HealthStatus(status: stopping ? "shutting_down" : "ok", queued: load.queued, running: load.running),
                    status: stopping ? .serviceUnavailable : .ok)
    }

    /// `GET /metrics`: Prometheus' text format.
    func metricsText() -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
        return Response(status: .ok, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(string: metrics.text(load: engine.load))))
    }

    // MARK: Completions

    enum Kind {
        case chat, text

        var endpoint: String { self == .chat ? "/v1/chat/completions" : "/v1/completions" }
        var idPrefix: String { self == .chat ? "chatcmpl-" : "cmpl-" }
    }

    /// When a request arrived.
    struct Start {
        let date = Date()
        let instant = ContinuousClock.now
    }

    /// The body, at most `maxBodyBytes` of valid UTF-8 JSON, decoded as `T`.
    func decodeBody<T: Decodable>(_ type: T.Type, _ request: Request) async throws -> T {
        let limit = configuration.maxBodyBytes
        let tooLarge = APIError(status: .contentTooLarge, message: "the request body is larger than \(limit) bytes", type: "invalid_request_error",
                                code: "request_too_large")
        if let length = request.headers[.contentLength].flatMap({ Int($0) }), length > limit { throw tooLarge }
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: limit) } catch let error as any HTTPResponseError where error.status == .contentTooLarge {
            throw tooLarge
        }
        let bytes = Array(buffer.readableBytesView)
        guard String(validating: bytes, as: UTF8.self) != nil else {
            throw APIError.invalid("the body is not valid UTF-8", param: nil)
        }
        do { return try JSONDecoder().decode(T.self, from: Data(bytes)) } catch let error as DecodingError {
            throw APIError(decoding: error)
        }
    }

    /// Checks and queues a completion, then answers it whole or as an event stream.
    func complete(_ request: CompletionRequest, wire: some SamplingRequest, kind: Kind, start: Start) async throws -> Response {
        if isStopping { throw APIError(ServeError.shuttingDown) }
        let prepared: PreparedCompletion
        let events: AsyncThrowingStream<CompletionEvent, Error>
        do {
            prepared = try engine.prepare(request)
            events = try engine.submit(prepared)
        } catch let error as ServeError {
            throw APIError(error)
        }
        let id = kind.idPrefix + Self.randomID()
        let created = Int(start.date.timeIntervalSince1970)
        if wire.streaming {
            return stream(events, id: id, created: created, kind: kind, includeUsage: wire.includeUsage, start: start)
        }
        var text = ""
        var first = true
        var finished: CompletionOutcome?
        do {
            for try await event in events {
                if first {
                    first = false
                    metrics.firstToken(endpoint: kind.endpoint, seconds: (ContinuousClock.now - start.instant).seconds)
                }
                switch event {
                case .text(let t): text += t
                case .finished(let o): finished = o
                }
            }
        } catch let error as ServeError {
            throw APIError(error)
        }
        guard let outcome = finished else { throw CancellationError() }
        record(outcome, id: id, start: start)
        let usage = Usage(promptTokens: outcome.promptTokens, completionTokens: outcome.completionTokens)
        switch kind {
        case .chat:
            return json(ChatCompletion(id: id, object: "chat.completion", created: created, model: modelID,
                                       choices: [.init(index: 0, message: AssistantMessage(role: "assistant", content: outcome.text),
                                                       finishReason: outcome.finishReason.rawValue)],
                                       usage: usage, probity: outcome.probity))
        case .text:
            return json(TextCompletion(id: id, object: "text_completion", created: created, model: modelID,
                                       choices: [.init(text: outcome.text, index: 0, finishReason: outcome.finishReason.rawValue)],
                                       usage: usage, probity: outcome.probity))
        }
    }

    /// The completion as server-sent events: chunks of text as the engine yields it, a last chunk
    /// with the finish reason, the usage chunk when asked, then `[DONE]`. The last chunk before
    /// `[DONE]` carries the `probity` result. A write that fails (the client went away) ends the
    /// iteration, which cancels the generation.
    func stream(_ events: AsyncThrowingStream<CompletionEvent, Error>, id: String, created: Int, kind: Kind, includeUsage: Bool,
                start: Start) -> Response {
        let chunks = Chunks(id: id, created: created, model: modelID, kind: kind)
        return Response(status: .ok, headers: SSE.headers, body: ResponseBody { [self] writer in
            if kind == .chat { try await writer.write(try chunks.chat(.init(role: "assistant", content: ""), finish: nil)) }
            var first = true
            do {
                for try await event in events {
                    if first {
                        first = false
                        metrics.firstToken(endpoint: kind.endpoint, seconds: (ContinuousClock.now - start.instant).seconds)
                    }
                    switch event {
                    case .text(let s):
                        try await writer.write(try chunks.piece(s))
                    case .finished(let o):
                        record(o, id: id, start: start)
                        let reason = o.finishReason.rawValue
                        let usage = Usage(promptTokens: o.promptTokens, completionTokens: o.completionTokens)
                        // The last chunk before [DONE] carries the probity result.
                        let last = includeUsage ? nil : o.probity
                        try await writer.write(kind == .chat ? try chunks.chat(.init(role: nil, content: nil), finish: reason, probity: last)
                                                             : try chunks.text("", finish: reason, probity: last))
                        if includeUsage {
                            try await writer.write(kind == .chat ? try chunks.chat(nil, finish: nil, usage: usage, probity: o.probity)
                                                                 : try chunks.text(nil, finish: nil, usage: usage, probity: o.probity))
                        }
                    }
                }
            } catch let error as ServeError {
                // Headers are gone: the error is the stream's last event.
                let e = APIError(error)
                try await writer.write(ByteBuffer(bytes: Array("data: ".utf8) + e.body() + [0x0A, 0x0A]))
                try await writer.finish(nil)
                return
            }
            try await writer.write(SSE.done)
            try await writer.finish(nil)
        })
    }

    /// The chunks of one streamed completion.
    struct Chunks: Sendable {
        let id: String
        let created: Int
        let model: String
        let kind: Kind

        func chat(_ delta: ChatCompletionChunk.Delta?, finish: String?, usage: Usage? = nil, probity: ProbityResult? = nil) throws -> ByteBuffer {
            try SSE.event(ChatCompletionChunk(id: id, object: "chat.completion.chunk", created: created, model: model,
                                              choices: delta.map { [.init(index: 0, delta: $0, finishReason: finish)] } ?? [],
                                              usage: usage, probity: probity))
        }

        func text(_ piece: String?, finish: String?, usage: Usage? = nil, probity: ProbityResult? = nil) throws -> ByteBuffer {
            try SSE.event(TextCompletion(id: id, object: "text_completion", created: created, model: model,
                                         choices: piece.map { [.init(text: $0, index: 0, finishReason: finish)] } ?? [],
                                         usage: usage, probity: probity))
        }

        /// A piece of text.
        func piece(_ s: String) throws -> ByteBuffer {
            kind == .chat ? try chat(.init(role: nil, content: s), finish: nil) : try text(s, finish: nil)
        }
    }

    /// Metrics and the audit log of a finished completion.
    func record(_ outcome: CompletionOutcome, id: String, start: Start) {
        metrics.completed(outcome)
        guard let (log, header) = auditLog else { return }
        let report = AuditReport(served: header, id: id, index: log.nextIndex(startedAt: start.date), prompt: outcome.prompt,
                                 promptTokens: outcome.promptTokens, run: outcome.run,
                                 startedAt: start.date, finishedAt: Date())
        do { try log.append(report) } catch {
            // A full disk must not take the server down; the operator reads the error in the log.
            logger.error("audit log: \(error)")
        }
    }

    /// A JSON response of `value`.
    func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        guard let data = try? encoder.encode(value) else {
            return APIError(status: .internalServerError, message: "the response cannot be encoded", type: "server_error").response()
        }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: ResponseBody(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// 24 random letters and digits.
    static func randomID() -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789")
        return String((0..<24).map { _ in alphabet[Int.random(in: 0..<alphabet.count)] })
    }
}
