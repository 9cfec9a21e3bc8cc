// Ctrl-C for the commands that run long (`audit`, `generate`, `steer`): SIGINT sets a flag that the
// run checks between tokens, so it stops cleanly and keeps what it has instead of dying mid-write.

import ArgumentParser
import Dispatch
import Foundation

/// Set from the signal handler's queue, read by the runner.
final class InterruptFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.lock(); value = true; lock.unlock() }
    var isSet: Bool { lock.lock(); defer { lock.unlock() }; return value }
}

/// Runs `body` with SIGINT caught into a flag instead of ending the process; the default action is
/// back once `body` returns or throws.
func catchingInterrupts<T>(_ body: (InterruptFlag) throws -> T) rethrows -> T {
    let flag = InterruptFlag()
    signal(SIGINT, SIG_IGN)
    let source = DispatchSource.makeSignalSource(signal: SIGINT, queue: .global())
    source.setEventHandler { flag.set() }
    source.resume()
    defer { source.cancel(); signal(SIGINT, SIG_DFL) }
    return try body(flag)
}

/// The end of a generation stopped by Ctrl-C, once its output is printed: a note on standard error
/// and exit code 130.
func interruptedExit() -> ExitCode {
    FileHandle.standardError.write(Data("probity: interrupted\n".utf8))
    return ExitCode(Exit.interrupted)
}
