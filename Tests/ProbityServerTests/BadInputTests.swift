// Hostile and mistaken requests: each gets OpenAI's error object with the right status and the
// field at fault, and the server goes on answering.

import Foundation
import Hummingbird
import HummingbirdTesting
import ProbityServer
import Testing

@Suite(.serialized) struct BadInputTests {
    /// (body, status, param, code) for POST /v1/chat/completions.
    static let chatCases: [(String, HTTPResponse.Status, String?, String?)] = [
        (#"{"messages": [{"role": "user", "content": "hi"}"#, .badRequest, nil, nil),  // malformed JSON
        (#"[1, 2]"#, .badRequest, nil, nil),  // not an object
        (#"{"model": "x"}"#, .badRequest, "messages", nil),  // missing messages
        (#"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": "8"}"#, .badRequest, "max_tokens", nil),
        (#"{"messages": [{"role": "user", "content": 5}]}"#, .badRequest, "messages[0].content", nil),
        (#"{"messages": [{"role": "wizard", "content": "hi"}]}"#, .badRequest, "messages[0].role", nil),
        (#"{"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"}"#, .badRequest, "temperature", nil),
        (#"{"messages": [{"role": "user", "content": "hi"}], "temperature": 7}"#, .badRequest, "temperature", nil),
        (#"{"messages": [{"role": "user", "content": "hi"}], "stop": 3}"#, .badRequest, "stop", nil),
        (#"{"messages": [{"role": "user", "content": "hi"}], "n": 2}"#, .badRequest, "n", nil),
        (#"{"messages": [{"role": "user", "content": "hi"}], "probity": {"fail_on": "apocalyptic"}}"#, .badRequest, "probity.fail_on", nil),
        (#"{"messages": [{"role": "user", "content": "hi"}], "probity": {"rules": ["no.such.rule"]}}"#, .badRequest, "probity.rules[0]", nil),
        (#"{"messages": [{"role": "user", "content": "hi"}], "probity": {"steer": [{"action": "clamp", "feature": "", "value": 1}]}}"#,
         .badRequest, "probity.steer[0].feature", nil),
        (#"{"messages": [{"role": "user", "content": "hi"}], "probity": {"steer": [{"action": "clamp", "feature": "smollm2-l15/no-such-latent", "value": 1}]}}"#,
         .badRequest, "probity.steer[0]", nil),
        (#"{"messages": [{"role": "user", "content": "hi"}], "probity": {"steer": [{"action": "clamp", "feature": "nopack/gold", "value": 1}]}}"#,
         .badRequest, "probity.steer[0].feature", nil),
        (#"{"messages": [{"role": "user", "content": "hi"}], "probity": {"features": {"top_k": 0}}}"#, .badRequest, "probity.features.top_k", nil),
        (#"{"messages": [{"role": "user", "content": "hi"}], "max_tokens": 1000000}"#, .badRequest, "max_tokens", "context_length_exceeded"),
    ]

    @Test func eachBadRequestGetsItsErrorAndTheServerGoesOn() async throws {
        try await ServerFixture.test(try ServerFixture.server(maxBodyBytes: 64 << 10)) { client in
            for (body, status, param, code) in Self.chatCases {
                let r = try await ServerFixture.post(client, "/v1/chat/completions", json: body)
                #expect(r.status == status, "\(body)")
                let e = try ServerFixture.error(r)
                #expect(e.param == param, "\(body): \(e.message)")
                #expect(e.code == code, "\(body)")
                #expect(e.type == "invalid_request_error")
                #expect(!e.message.isEmpty)
            }
            // A prompt longer than the context.
            let long = String(repeating: "word ", count: 10_000)
            let tooLong = try await ServerFixture.post(client, "/v1/completions",
                                                       try ServerFixture.encode(TextCompletionRequest(prompt: long, maxTokens: 8)))
            #expect(tooLong.status == .badRequest)
            let e = try ServerFixture.error(tooLong)
            #expect(e.code == "context_length_exceeded" && e.param == "prompt")

            // Invalid UTF-8 inside a string.
            let bad = try await ServerFixture.post(client, "/v1/completions", ByteBuffer(bytes: Array(#"{"prompt": "a"#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8)))
            #expect(bad.status == .badRequest)
            #expect(try ServerFixture.error(bad).message.contains("UTF-8"))

            // Over the body limit: 413.
            let big = try await ServerFixture.post(client, "/v1/completions",
                                                   try ServerFixture.encode(TextCompletionRequest(prompt: String(repeating: "x", count: 70_000))))
            #expect(big.status == .contentTooLarge)
            #expect(try ServerFixture.error(big).code == "request_too_large")

            // Unknown route and wrong method.
            let missing = try await client.execute(uri: "/v1/embeddings", method: .post, body: ByteBuffer(string: "{}"))
            #expect(missing.status == .notFound)
            #expect(try ServerFixture.error(missing).code == "not_found")
            let wrong = try await client.execute(uri: "/v1/chat/completions", method: .get)
            #expect(wrong.status == .methodNotAllowed)
            #expect(wrong.headers[.allow] == "POST")
            _ = try ServerFixture.error(wrong)

            // Unknown fields are ignored, and the server still answers.
            let ok = try await ServerFixture.post(client, "/v1/chat/completions",
                                                  json: #"{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4, "temperature": 0, "logit_bias": {"1": 2}, "user": "u1", "frequency_penalty": 0}"#)
            #expect(ok.status == .ok)
        }
    }
}
