// What every libFuzzer entry point in Fuzz/ does with one input: run the target's reader and turn
// a violated property or a missing set-up into a stop. Thrown reader errors are the refusals
// bad input should get, so they pass.

import Foundation
import ProbityLM

public enum FuzzDriver {
    /// The context of this process: scratch files under `$PROBITY_FUZZ_SCRATCH` (else the temporary
    /// directory) in a directory of this process's own, fixture packs from `$PROBITY_FUZZ_PACKS`.
    public static func context() throws -> FuzzContext {
        let environment = ProcessInfo.processInfo.environment
        let root = environment["PROBITY_FUZZ_SCRATCH"] ?? (NSTemporaryDirectory() + "probity-fuzz")
        return try FuzzContext(scratch: root + "/\(ProcessInfo.processInfo.processIdentifier)",
                               packs: environment["PROBITY_FUZZ_PACKS"],
                               vocabularies: vocabularies)
    }

    /// Where scripts/setup puts llama.cpp's test vocabularies.
    public static var vocabularies: String { ModelLocator.cacheDirectory + "/vocab" }

    /// Runs `target` once on the empty input before libFuzzer starts, so that one-time set-up (a
    /// tokenizer's vocabulary, loaded on first use) is not timed as the first input's work: the
    /// timeout is wall-clock time, and on a busy machine that load alone can pass it. What the
    /// empty input does is libFuzzer's first input anyway, and judged there.
    public static func warmUp(_ target: FuzzTarget, _ context: Result<FuzzContext, Error>) {
        guard let context = try? context.get() else { return }
        _ = try? target.run([], in: context)
    }

    /// Runs `target` on the `size` bytes at `data`. Returns 0 (libFuzzer's "keep going"); aborts on
    /// a violation, so libFuzzer records the input as a crash; exits 1 when set-up is missing.
    public static func testOneInput(_ target: FuzzTarget, _ context: Result<FuzzContext, Error>,
                                    _ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
        let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
        do {
            let outcome = try target.run(bytes, in: try context.get())
            if case .violation(let what) = outcome {
                FileHandle.standardError.write(Data("fuzz-\(target.rawValue): property violated: \(what)\n".utf8))
                abort()
            }
        } catch {
            FileHandle.standardError.write(Data("fuzz-\(target.rawValue): cannot run: \(error)\n".utf8))
            exit(1)
        }
        return 0
    }
}
