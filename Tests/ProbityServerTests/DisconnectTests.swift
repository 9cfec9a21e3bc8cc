// A client that goes away cancels its generation: the handler's task is cancelled (or, streaming,
// its writes fail), it stops iterating the engine's stream, and the engine cuts the request at its
// next token instead of generating the rest.

import Foundation
import Hummingbird
import HummingbirdTesting
import ProbityServe
import ProbityServer
import Testing

@Suite(.serialized) struct DisconnectTests {
    @Test(arguments: [false, true]) func aClientThatGoesAwayCancelsItsGeneration(stream: Bool) async throws {
        let server = try ServerFixture.server()
        try await ServerFixture.test(server) { client in
            // Long enough to take many seconds; cut after it starts.
            let body = try ServerFixture.encode(ServerFixture.chat("Write a long story about a lighthouse keeper.", maxTokens: 400,
                                                                   stream: stream))
            let request = Task { try await ServerFixture.post(client, "/v1/chat/completions", body) }
            let clock = ContinuousClock()
            let deadline = clock.now + .seconds(60)
            while server.engine.load.running == 0 && clock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(server.engine.load.running == 1, "the request is running")
            try await Task.sleep(for: .milliseconds(200))
            request.cancel()
            let cancelled = clock.now
            while server.engine.load.running > 0 && clock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
            #expect(server.engine.load.running == 0)
            #expect(clock.now - cancelled < .seconds(5), "cut at its next token, not after 400")
            _ = await request.result
            // It never finished: no tokens were counted.
            let m = try await client.execute(uri: "/metrics", method: .get)
            let text = String(decoding: m.body.readableBytesView, as: UTF8.self)
            #expect(!text.contains("probity_completion_tokens_total 4"), "no finished completion of 400 tokens")
            #expect(text.contains("probity_completion_tokens_total 0"))
        }
    }
}
