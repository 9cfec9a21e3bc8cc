// Runs the real `probity` binary (built next to this test bundle) and captures its output.

import Foundation
import Testing

struct CLIResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum CLI {
    /// The built `probity` executable in the same build products directory as the tests.
    static var binary: URL {
        var dir = Bundle.main.bundleURL
        for _ in 0..<4 {
            let candidate = dir.appendingPathComponent("probity")
            if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
            dir = dir.deletingLastPathComponent()
        }
        // `swift test` puts the test bundle and the products in .build/<config>/.
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent()
        return root.appendingPathComponent(".build/release/probity")
    }

    /// Runs the binary with `arguments`, in `directory` when given (else the tests' own), with this
    /// process's environment less the variables in `unsetting`, plus `environment`.
    static func run(_ arguments: [String], environment: [String: String] = [:], unsetting: [String] = [],
                    in directory: URL? = nil) throws -> CLIResult {
        var env = ProcessInfo.processInfo.environment
        for k in unsetting { env[k] = nil }
        for (k, v) in environment { env[k] = v }
        return try execute(binary, arguments, environment: env, in: directory)
    }

    /// Runs `executable` with `arguments` in `directory` (else the tests' own) with exactly
    /// `environment`, and collects its output and status.
    static func execute(_ executable: URL, _ arguments: [String], environment: [String: String],
                        in directory: URL?) throws -> CLIResult {
        let process = Process()
        process.executableURL = executable
        if let directory { process.currentDirectoryURL = directory }
        process.arguments = arguments
        process.environment = environment
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        try process.run()
        // Read both pipes before waiting so a large output cannot deadlock the child.
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        let errData = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return CLIResult(status: process.terminationStatus,
                         stdout: String(decoding: outData, as: UTF8.self),
                         stderr: String(decoding: errData, as: UTF8.self))
    }

    /// A fresh scratch directory for a test.
    static func scratch() throws -> URL {
        let url = FileManager.default.temporaryDirectory
            .appendingPathComponent("probity-tests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

@Suite struct CLIBasics {
    @Test func versionPrints() throws {
        let r = try CLI.run(["version"])
        #expect(r.status == 0)
        #expect(r.stdout.hasPrefix("probity "))
    }

    @Test func unknownOptionIsBadInput() throws {
        let r = try CLI.run(["version", "--no-such-flag"])
        #expect(r.status == 2)
        #expect(r.stderr.contains("--no-such-flag"))
    }
}
