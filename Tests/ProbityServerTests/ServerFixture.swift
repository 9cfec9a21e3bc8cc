// What the server tests share: the default model loaded once, servers over real engines with the
// example rules and the default SAE pack, and requests and responses as the wire carries them.

import Foundation
import Hummingbird
import HummingbirdTesting
import ProbityAudit
import ProbityFeatures
import ProbityLM
import ProbityServe
import ProbityServer
import ProbityTestSupport
import Testing

enum ServerFixture {
    static let repo = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
    static let sycophancyRules = repo + "/rules/sycophancy.yaml"
    static let goldRules = repo + "/rules/demo/gold.yaml"
    static let defaultPack = repo + "/packs/smollm2-l15"

    private static let loadedModel = Result { try LoadedModel.load(TestData.defaultModelPath(), threads: 2) }
    static func loaded() throws -> LoadedModel { try loadedModel.get() }

    /// A server over a fresh engine with `rules` and the default pack (plus the rules' packs).
    static func server(rules: [String] = [sycophancyRules], maxQueue: Int = 16, maxBatch: Int = 4,
                       apiKey: String? = nil, maxBodyBytes: Int = 1 << 20, auditLog: String? = nil,
                       auditLogMaxBytes: Int = 64 << 20, keep: Int = 5) throws -> CompletionServer {
        let loaded = try loaded()
        let ruleSet = try AuditRuleSet(files: rules, model: loaded)
        let (packs, _) = try ServedPacks.load([defaultPack] + ruleSet.compiled.packs.map(\.path), for: loaded, allowModelMismatch: false)
        let engine = try ServeEngine(loaded: loaded, rules: ruleSet, packs: packs,
                                     configuration: .init(maxBatch: maxBatch, maxQueue: maxQueue, defaultMaxTokens: 8))
        let log = try auditLog.map { path in
            (try AuditLog(path: path, maxBytes: auditLogMaxBytes, keep: keep), try AuditReport.ServedHeader(probityVersion: "test", loaded: loaded, model: "default", rules: ruleSet,
                                                                      ruleFiles: rules, maxTokens: 8, failOn: .high, chatFormat: "auto"))
        }
        return CompletionServer(engine: engine, configuration: .init(maxBodyBytes: maxBodyBytes, apiKey: apiKey), auditLog: log)
    }

    /// Runs `body` against `server`'s routes, then shuts its engine down.
    static func test<T: Sendable>(_ server: CompletionServer, _ body: @Sendable (any TestClientProtocol) async throws -> T) async throws -> T {
        let app = server.makeApplication()
        do {
            let out = try await app.test(.router, body)
            await server.engine.shutdown()
            return out
        } catch {
            await server.engine.shutdown()
            throw error
        }
    }

    static func encode<T: Encodable>(_ value: T) throws -> ByteBuffer {
        ByteBuffer(bytes: try JSONEncoder().encode(value))
    }

    static func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
        try JSONDecoder().decode(T.self, from: Data(response.body.readableBytesView))
    }

    /// POSTs `body` (raw bytes) to `path`.
    static func post(_ client: any TestClientProtocol, _ path: String, _ body: ByteBuffer, headers: HTTPFields = [:]) async throws -> TestResponse {
        var h = headers
        h[.contentType] = "application/json"
        return try await client.execute(uri: path, method: .post, headers: h, body: body)
    }

    static func post(_ client: any TestClientProtocol, _ path: String, json: String) async throws -> TestResponse {
        try await post(client, path, ByteBuffer(string: json))
    }

    /// The `data:` payloads of an event stream, in order; the stream must end with `[DONE]`.
    static func events(_ response: TestResponse) throws -> [Data] {
        let text = String(decoding: response.body.readableBytesView, as: UTF8.self)
        let blocks = text.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(blocks.last == "data: [DONE]", "the stream ends with [DONE]")
        return try blocks.dropLast().map { block in
            guard block.hasPrefix("data: ") else { throw Malformed(description: "not an SSE data event: \(block)") }
            return Data(block.dropFirst(6).utf8)
        }
    }

    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    /// The error object of a failed response, checked to have OpenAI's shape.
    static func error(_ response: TestResponse) throws -> ErrorEnvelope.Body {
        let object = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
        let error = object?["error"] as? [String: Any]
        #expect(Set(error?.keys.map { $0 } ?? []) == ["message", "type", "param", "code"], "OpenAI's error keys")
        return try decode(ErrorEnvelope.self, response).error
    }

    static func chat(_ user: String, maxTokens: Int = 8, stream: Bool? = nil, includeUsage: Bool? = nil,
                     probity: ProbityRequestOptions? = nil) -> ChatCompletionRequest {
        ChatCompletionRequest(model: "default", messages: [WireMessage(role: "user", content: user)], maxTokens: maxTokens, temperature: 0,
                              seed: 1, stream: stream, streamOptions: includeUsage.map { StreamOptions(includeUsage: $0) }, probity: probity)
    }
}
