// Chat and text completions over the real engine and the default model, whole and streamed: the
// shapes OpenAI clients read, streamed text equal to the whole answer, the usage chunk, and the
// `probity` extension (rules by id, a request's own steering, features per token).

import Foundation
import HummingbirdTesting
import ProbityServe
import ProbityServer
import Testing

@Suite(.serialized) struct CompletionTests {
    @Test func chatWholeAndStreamedAgree() async throws {
        try await ServerFixture.test(try ServerFixture.server()) { client in
            let whole = try await ServerFixture.post(client, "/v1/chat/completions", try ServerFixture.encode(ServerFixture.chat("Hi there")))
            #expect(whole.status == .ok)
            #expect(whole.headers[.contentType] == "application/json")
            let c = try ServerFixture.decode(ChatCompletion.self, whole)
            #expect(c.object == "chat.completion")
            #expect(c.id.hasPrefix("chatcmpl-"))
            #expect(c.model == "Smollm2 135M 8k Lc100K Mix1 Ep2")
            #expect(c.choices.count == 1)
            let choice = try #require(c.choices.first)
            #expect(choice.message.role == "assistant")
            #expect(!choice.message.content.isEmpty)
            #expect(["stop", "length"].contains(choice.finishReason))
            #expect(c.usage.completionTokens >= 1 && c.usage.completionTokens <= 8)
            #expect(c.usage.totalTokens == c.usage.promptTokens + c.usage.completionTokens)
            #expect(c.probity.failOn == .high)

            let streamed = try await ServerFixture.post(client, "/v1/chat/completions",
                                                        try ServerFixture.encode(ServerFixture.chat("Hi there", stream: true, includeUsage: true)))
            #expect(streamed.status == .ok)
            #expect(streamed.headers[.contentType] == "text/event-stream")
            let chunks = try ServerFixture.events(streamed).map { try JSONDecoder().decode(ChatCompletionChunk.self, from: $0) }
            #expect(chunks.allSatisfy { $0.object == "chat.completion.chunk" && $0.id == chunks.first?.id })
            #expect(chunks.first?.choices.first?.delta.role == "assistant")
            let text = chunks.flatMap(\.choices).compactMap(\.delta.content).joined()
            #expect(text == choice.message.content, "streamed text is the whole answer")
            // The finish chunk, then the usage chunk with no choices and the probity result.
            let finish = try #require(chunks.dropLast().last)
            #expect(finish.choices.first?.finishReason == choice.finishReason)
            #expect(finish.usage == nil)
            let last = try #require(chunks.last)
            #expect(last.choices.isEmpty)
            #expect(last.usage == c.usage)
            #expect(last.probity == c.probity)
            #expect(chunks.dropLast().allSatisfy { $0.probity == nil && $0.usage == nil })

            // A stop string (as an array, or alone) ends the answer before it, finish_reason stop.
            let words = choice.message.content.split(separator: " ")
            let word = String(try #require(words.dropFirst().first, "two words to stop at"))
            let before = String(choice.message.content[..<(try #require(choice.message.content.range(of: word))).lowerBound])
            for stop in [StopSequences.many([word]), .one(word)] {
                var request = ServerFixture.chat("Hi there")
                request.stop = stop
                let stopped = try ServerFixture.decode(ChatCompletion.self,
                                                       try await ServerFixture.post(client, "/v1/chat/completions", try ServerFixture.encode(request)))
                #expect(stopped.choices.first?.message.content == before)
                #expect(stopped.choices.first?.finishReason == "stop")
            }
        }
    }

    @Test func streamWithoutUsageEndsWithTheFinishChunk() async throws {
        try await ServerFixture.test(try ServerFixture.server()) { client in
            let r = try await ServerFixture.post(client, "/v1/chat/completions",
                                                 try ServerFixture.encode(ServerFixture.chat("Name a colour.", stream: true)))
            let chunks = try ServerFixture.events(r).map { try JSONDecoder().decode(ChatCompletionChunk.self, from: $0) }
            let last = try #require(chunks.last)
            #expect(last.choices.first?.finishReason != nil)
            #expect(last.probity != nil, "the last chunk before [DONE] carries probity")
            #expect(chunks.allSatisfy { $0.usage == nil })
            // finish_reason is null (not absent) on the chunks before, as OpenAI sends it.
            let raw = try ServerFixture.events(r)
            #expect(String(decoding: try #require(raw.first), as: UTF8.self).contains(#""finish_reason":null"#))
        }
    }

    @Test func textCompletionsWholeAndStreamed() async throws {
        try await ServerFixture.test(try ServerFixture.server()) { client in
            let request = TextCompletionRequest(model: "default", prompt: "The capital of France is", maxTokens: 8, temperature: 0)
            let whole = try await ServerFixture.post(client, "/v1/completions", try ServerFixture.encode(request))
            #expect(whole.status == .ok)
            let t = try ServerFixture.decode(TextCompletion.self, whole)
            #expect(t.object == "text_completion")
            #expect(t.id.hasPrefix("cmpl-"))
            let choice = try #require(t.choices.first)
            #expect(!choice.text.isEmpty)
            #expect(t.usage?.completionTokens ?? 0 >= 1)

            var streaming = request
            streaming.stream = true
            streaming.streamOptions = StreamOptions(includeUsage: true)
            let s = try await ServerFixture.post(client, "/v1/completions", try ServerFixture.encode(streaming))
            let chunks = try ServerFixture.events(s).map { try JSONDecoder().decode(TextCompletion.self, from: $0) }
            #expect(chunks.flatMap(\.choices).map(\.text).joined() == choice.text)
            #expect(chunks.last?.usage == t.usage)
            #expect(chunks.last?.choices.isEmpty == true)
            #expect(chunks.last?.probity == t.probity)
        }
    }

    /// A rule chosen by id fires and edits (the gold demo clamps its latent on every token), a
    /// request's own clamp changes the text, and features come back per position.
    @Test func probityExtension() async throws {
        try await ServerFixture.test(try ServerFixture.server(rules: [ServerFixture.goldRules, ServerFixture.sycophancyRules])) { client in
            let question = "Where should I go on vacation this summer?"
            func ask(_ p: ProbityRequestOptions?) async throws -> ChatCompletion {
                let r = try await ServerFixture.post(client, "/v1/chat/completions", try ServerFixture.encode(ServerFixture.chat(question, maxTokens: 12, probity: p)))
                #expect(r.status == .ok)
                return try ServerFixture.decode(ChatCompletion.self, r)
            }
            let plain = try await ask(ProbityRequestOptions(rules: []))
            #expect(plain.probity.findings.isEmpty)
            #expect(plain.probity.interventions.isEmpty)
            #expect(plain.probity.features == nil && plain.probity.pieces == nil)

            let ruled = try await ask(ProbityRequestOptions(rules: ["demo.gold"]))
            #expect(ruled.probity.findings.map(\.rule) == ["demo.gold"])
            #expect(ruled.probity.interventions.contains { $0.source == "demo.gold" && $0.positionsEdited > 0 })
            #expect(ruled.choices.first?.message.content != plain.choices.first?.message.content)

            let steered = try await ask(ProbityRequestOptions(rules: [], steer: [SteerEdit(action: "clamp", feature: "smollm2-l15/gold", value: .text("1.5x"))]))
            let edit = try #require(steered.probity.interventions.first)
            #expect(edit.source == "request" && edit.feature == "smollm2-l15/gold" && edit.action == "clamp" && edit.positionsEdited > 0)
            #expect(steered.choices.first?.message.content != plain.choices.first?.message.content, "the clamp changes the answer")

            let featured = try await ask(ProbityRequestOptions(rules: [], features: FeatureRequest(topK: 3)))
            let features = try #require(featured.probity.features)
            let pieces = try #require(featured.probity.pieces)
            #expect(!features.isEmpty && features.count <= pieces.count)
            #expect(features.allSatisfy { $0.packs.allSatisfy { $0.pack == "smollm2-l15" && $0.top.count <= 3 } })
            #expect(featured.choices.first?.message.content == plain.choices.first?.message.content, "reading features does not steer")
        }
    }
}
