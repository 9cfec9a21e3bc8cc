// Every payload the server writes holds to docs/serve.schema.json: a chat completion with findings,
// request steering and features, each chunk of a streamed chat with usage, a text completion, an
// error object, and the `probity` request object as the types encode it.

import Foundation
import HummingbirdTesting
import ProbityServe
import ProbityServer
import ProbityTestSupport
import Testing

@Suite(.serialized) struct SchemaTests {
    static func validator(for name: String) throws -> JSONSchemaValidator {
        let data = try Data(contentsOf: URL(fileURLWithPath: ServerFixture.repo + "/docs/serve.schema.json"))
        var root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        #expect((root["$defs"] as? [String: Any])?[name] != nil, "serve.schema.json defines \(name)")
        root["$ref"] = "#/$defs/\(name)"
        return JSONSchemaValidator(root: root)
    }

    static func check(_ data: Data, is name: String) throws {
        let value = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
        let violations = try validator(for: name).validate(value)
        #expect(violations.isEmpty, "\(name): \(violations.prefix(5))")
    }

    @Test func everyPayloadHoldsToTheSchema() async throws {
        try await ServerFixture.test(try ServerFixture.server()) { client in
            let probity = ProbityRequestOptions(steer: [SteerEdit(action: "clamp", feature: "smollm2-l15/gold", value: .text("1.5x"))],
                                                features: FeatureRequest(topK: 2))
            let whole = try await ServerFixture.post(client, "/v1/chat/completions",
                                                     try ServerFixture.encode(ServerFixture.chat("Where should I go this summer?", probity: probity)))
            #expect(whole.status == .ok)
            let body = Data(whole.body.readableBytesView)
            try Self.check(body, is: "chat_completion")
            let decoded = try JSONDecoder().decode(ChatCompletion.self, from: body)
            #expect(!decoded.probity.interventions.isEmpty && decoded.probity.features?.isEmpty == false)

            let streamed = try await ServerFixture.post(client, "/v1/chat/completions",
                                                        try ServerFixture.encode(ServerFixture.chat("Name a colour.", stream: true, includeUsage: true,
                                                                                                    probity: probity)))
            let chunks = try ServerFixture.events(streamed)
            #expect(chunks.count >= 3)
            for chunk in chunks { try Self.check(chunk, is: "chat_completion_chunk") }

            let text = try await ServerFixture.post(client, "/v1/completions",
                                                    json: #"{"prompt": "The capital of France is", "max_tokens": 4, "temperature": 0}"#)
            #expect(text.status == .ok)
            try Self.check(Data(text.body.readableBytesView), is: "text_completion")

            let bad = try await ServerFixture.post(client, "/v1/chat/completions", json: #"{"messages": [}"#)
            #expect(bad.status == .badRequest)
            try Self.check(Data(bad.body.readableBytesView), is: "error")
        }
        try Self.check(try JSONEncoder().encode(ProbityRequestOptions(rules: ["demo"], steer: [SteerEdit(action: "add", feature: "p/f", value: .number(-4))],
                                                                      features: FeatureRequest(topK: 3, packs: ["p"]), failOn: .medium)),
                       is: "probity_request")
    }
}
