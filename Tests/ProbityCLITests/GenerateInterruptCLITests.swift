// SIGINT during a real `probity generate` or `steer` on the default model: generation stops between
// tokens, what was generated is printed (the stream so far, or the JSON with finish reason
// "interrupted"), and the process exits with code 130 rather than dying of the signal.

import Foundation
import Testing

@Suite(.serialized) struct GenerateInterruptCLITests {
    /// Far more tokens than a test waits for: only an interrupt ends the run early.
    static let maxTokens = 4000

    struct Interrupted {
        var reason: Process.TerminationReason
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs `arguments`, sends SIGINT once standard output holds `streamed` bytes (or, with 0, after
    /// `wait` seconds), and collects the rest.
    func interrupt(_ arguments: [String], streamed: Int = 0, wait: Double = 0) throws -> Interrupted {
        let process = Process()
        process.executableURL = CLI.binary
        process.arguments = arguments
        let stdout = Pipe(), stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        var printed = Data()
        let handle = stdout.fileHandleForReading
        while printed.count < streamed {
            let chunk = handle.availableData
            if chunk.isEmpty { break }   // the process ended first
            printed += chunk
        }
        if wait > 0 { Thread.sleep(forTimeInterval: wait) }
        #expect(process.isRunning, "the run ended before it could be interrupted")
        process.interrupt()   // SIGINT
        printed += handle.readDataToEndOfFile()
        let errors = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Interrupted(reason: process.terminationReason, status: process.terminationStatus,
                           stdout: String(decoding: printed, as: UTF8.self), stderr: String(decoding: errors, as: UTF8.self))
    }

    @Test func generateStopsPrintsWhatItHasAndExits130() throws {
        let r = try interrupt(["generate", "--prompt", "Once upon a time", "--max-tokens", "\(Self.maxTokens)", "--ignore-eos"],
                              streamed: 40)
        #expect(r.reason == .exit)
        #expect(r.status == 130, "\(r.stderr)")
        #expect(r.stdout.count >= 40 && r.stdout.hasSuffix("\n"))
        #expect(r.stderr == "probity: interrupted\n")
    }

    @Test func steerStopsPrintsWhatItHasAndExits130() throws {
        let r = try interrupt(["steer", "--pack", SteeringOptionsCLITests.pack, "--clamp", "gold=1.5x",
                               "--prompt", "Once upon a time", "--max-tokens", "\(Self.maxTokens)", "--ignore-eos"],
                              streamed: 40)
        #expect(r.reason == .exit)
        #expect(r.status == 130, "\(r.stderr)")
        #expect(r.stdout.count >= 40 && r.stdout.hasSuffix("\n"))
        #expect(r.stderr.contains("probity: interrupted"))
    }

    /// With --json nothing streams, so the interrupt comes after a pause; whenever it lands (even
    /// while the model loads) the output is the JSON of what was generated, marked interrupted.
    @Test func steerJSONIsPrintedMarkedInterrupted() throws {
        let r = try interrupt(["steer", "--pack", SteeringOptionsCLITests.pack, "--clamp", "gold=1.5x", "--compare",
                               "--prompt", "Once upon a time", "--max-tokens", "\(Self.maxTokens)", "--ignore-eos", "--json"],
                              wait: 3)
        #expect(r.reason == .exit)
        #expect(r.status == 130, "\(r.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], "\(r.stdout)")
        #expect(object["finish_reason"] as? String == "interrupted")
        #expect(((object["steered_tokens"] as? [Int])?.count ?? Self.maxTokens) < Self.maxTokens)
        #expect(object["unsteered"] == nil, "a stopped steered run starts no unsteered one")
    }
}
