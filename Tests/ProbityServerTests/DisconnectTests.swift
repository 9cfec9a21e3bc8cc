// A client that goes away cancels its generation: the handler's task is cancelled (or, streaming,
// its writes fail), it stops iterating the engine's stream, and the engine cuts the request at its
// next token instead of generating the rest.
//
// The request is watched and cancelled from a thread of its own: under a loaded test run the
// cooperative pool can be busy for seconds, and a watcher on it could miss the whole request.

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
            // Long enough to take many seconds even on a fast machine; cut soon after it starts.
            let maxTokens = 1000
            let body = try ServerFixture.encode(ServerFixture.chat("Write a long story about a lighthouse keeper.", maxTokens: maxTokens,
                                                                   stream: stream))
            let request = Task { try await ServerFixture.post(client, "/v1/chat/completions", body) }
            let watch = Watcher(engine: server.engine) { request.cancel() }
            let seen = await watch.run()
            #expect(seen.sawRunning, "the request was seen running")
            #expect(seen.endedAfterCancel, "the request ended after it was cancelled")
            if let cut = seen.cutSeconds { #expect(cut < 5, "cut at its next token, not after \(maxTokens) (took \(cut) s)") }
            _ = await request.result
            // It never finished: no tokens were counted.
            let m = try await client.execute(uri: "/metrics", method: .get)
            let text = String(decoding: m.body.readableBytesView, as: UTF8.self)
            #expect(text.contains("probity_completion_tokens_total 0\n"), "no finished completion")
        }
    }
}

/// Polls an engine's load on its own thread: waits for a request to run, lets it generate a little,
/// calls `cancel`, and times how long the engine takes to drop it.
private final class Watcher: @unchecked Sendable {
    struct Seen: Sendable {
        var sawRunning = false
        var endedAfterCancel = false
        var cutSeconds: Double?
    }

    let engine: ServeEngine
    let cancel: @Sendable () -> Void

    init(engine: ServeEngine, cancel: @escaping @Sendable () -> Void) {
        self.engine = engine
        self.cancel = cancel
    }

    func run() async -> Seen {
        await withCheckedContinuation { (done: CheckedContinuation<Seen, Never>) in
            let thread = Thread { [self] in done.resume(returning: watch()) }
            thread.start()
        }
    }

    private func watch() -> Seen {
        var seen = Seen()
        let start = Date()
        while engine.load.running == 0 && Date().timeIntervalSince(start) < 300 { Thread.sleep(forTimeInterval: 0.002) }
        seen.sawRunning = engine.load.running > 0
        Thread.sleep(forTimeInterval: 0.2)
        let cancelled = Date()
        cancel()
        while engine.load.running > 0 && Date().timeIntervalSince(cancelled) < 300 { Thread.sleep(forTimeInterval: 0.002) }
        seen.endedAfterCancel = engine.load.running == 0
        if seen.sawRunning && seen.endedAfterCancel { seen.cutSeconds = Date().timeIntervalSince(cancelled) }
        return seen
    }
}
